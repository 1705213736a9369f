"""The report of files a command left out, shared by every command that reads folders.

Training, finetuning, evaluation, prediction, export validation and a server
all collect what they skip in one :class:`SkipReport` and show it the same
way: a count per reason and the first few names.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

SHOWN = 3  # names in the one-line description


class SkipReport(Mapping[str, int]):
    """Skipped files by reason: a mapping ``reason -> count`` that also remembers which files.

    A file is counted once however often it is met (a streaming loader meets
    a corrupt file every epoch). Reports merge with ``|``; a plain
    ``{reason: count}`` mapping merges in as counts without names.
    """

    def __init__(self) -> None:
        self.files: dict[str, str] = {}  # path -> reason, in the order met
        self.details: dict[str, str] = {}  # path -> the full message, where known
        self._unnamed: dict[str, int] = {}

    # -- filling -----------------------------------------------------------------

    def add(self, path: Any, reason: str, detail: str | None = None) -> None:
        """Record that ``path`` was skipped for ``reason`` (again: no change); ``detail`` is the full message."""
        self.files.setdefault(str(path), reason)
        if detail:
            self.details.setdefault(str(path), detail)

    def update(self, other: Mapping[str, int] | None) -> "SkipReport":
        """Merge ``other`` (a report, or counts by reason) into this one; returns self."""
        if isinstance(other, SkipReport):
            for path, reason in other.files.items():
                self.add(path, reason, other.details.get(path))
            counts: Mapping[str, int] = other._unnamed
        else:
            counts = other or {}
        for reason, n in counts.items():
            if n:
                self._unnamed[reason] = self._unnamed.get(reason, 0) + int(n)
        return self

    def __or__(self, other: Any) -> "SkipReport":
        if other is not None and not isinstance(other, Mapping):
            return NotImplemented
        return SkipReport().update(self).update(other)

    def __ror__(self, other: Any) -> "SkipReport":
        if other is not None and not isinstance(other, Mapping):
            return NotImplemented
        return SkipReport().update(other).update(self)

    # -- the mapping reason -> count -----------------------------------------------

    def counts(self) -> dict[str, int]:
        """Files per reason, reasons sorted."""
        out = dict(self._unnamed)
        for reason in self.files.values():
            out[reason] = out.get(reason, 0) + 1
        return dict(sorted(out.items()))

    def __getitem__(self, reason: str) -> int:
        return self.counts()[reason]

    def __iter__(self) -> Iterator[str]:
        return iter(self.counts())

    def __len__(self) -> int:
        return len(self.counts())

    @property
    def total(self) -> int:
        """How many files were skipped."""
        return sum(self.counts().values())

    # -- showing -------------------------------------------------------------------

    def examples(self, n: int = SHOWN) -> list[tuple[str, str]]:
        """The first ``n`` skipped files with their reasons, images that failed to decode first."""
        ranked = sorted(self.files.items(), key=lambda item: item[1] == "not an image")  # stable
        return ranked[:n]

    def describe(self, shown: int = SHOWN) -> str:
        """'skipped 2 files (1 corrupt, 1 not an image): a/x.jpg (corrupt), ...', or '' when none."""
        total = self.total
        if not total:
            return ""
        parts = ", ".join(f"{n} {reason}" for reason, n in self.counts().items())
        line = f"skipped {total} file{'s' if total != 1 else ''} ({parts})"
        names = self.examples(shown)
        if names:
            more = len(self.files) - len(names)
            line += ": " + ", ".join(f"{path} ({reason})" for path, reason in names)
            line += f" and {more} more" if more > 0 else ""
        return line

    def nothing_read(self) -> str:
        """The message when nothing could be read: the one file's own error, or the report."""
        if len(self.files) == 1 and not self._unnamed:
            path = next(iter(self.files))
            if path in self.details:
                return self.details[path]
        return f"none of the images could be read: {self.describe()}"

    def to_dict(self, shown: int = 10) -> dict[str, Any]:
        """JSON form: ``{"count", "by_reason", "files": [{"path", "reason"}, ...]}`` (the first ``shown``)."""
        return {
            "count": self.total,
            "by_reason": self.counts(),
            "files": [{"path": path, "reason": reason} for path, reason in self.examples(shown)],
        }

    def __repr__(self) -> str:
        return f"SkipReport({self.counts()!r})"


def as_report(value: Mapping[str, int] | None) -> SkipReport:
    """``value`` as a :class:`SkipReport` (itself when it is one)."""
    return value if isinstance(value, SkipReport) else SkipReport().update(value)
