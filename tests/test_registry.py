"""The model registry: listing, wildcards, aliases, suggestions, duplicates."""

import pytest

from zoo.errors import DuplicateNameError, InvalidSpecError, UnknownModelError
from zoo.registry import ModelRegistry, ModelSpec, natural_key


def spec(name, **kw):
    return ModelSpec(name=name, builder="zoo.models.lecture:net", **kw)


@pytest.fixture
def reg():
    r = ModelRegistry()
    for name, family, tags in [
        ("resnet18", "resnet", ("imagenet",)),
        ("resnet34", "resnet", ("imagenet",)),
        ("resnet101", "resnet", ("imagenet",)),
        ("vit_base_patch16_224", "vit", ("imagenet", "transformer")),
        ("net", "lecture", ("cifar",)),
        ("timm/vit_small_patch16_224", "timm", ()),
    ]:
        r.register(spec(name, family=family, tags=tags, aliases=("book_net",) if name == "net" else ()))
    return r


def test_list_sorts_naturally_and_filters_by_wildcard(reg):
    assert [s.name for s in reg.list("resnet*")] == ["resnet18", "resnet34", "resnet101"]
    assert [s.name for s in reg.list("timm/vit_*")] == ["timm/vit_small_patch16_224"]
    assert [s.name for s in reg.list(["net", "resnet1?"])] == ["net", "resnet18"]
    assert natural_key("resnet18") < natural_key("resnet101")


def test_list_filters_by_family_and_tag(reg):
    assert [s.name for s in reg.list(family="lecture")] == ["net"]
    assert [s.name for s in reg.list(tag="transformer")] == ["vit_base_patch16_224"]
    assert reg.list("nothing*") == []


def test_get_by_alias_and_case(reg):
    assert reg.get("book_net").name == "net"
    assert reg.get("ResNet34").name == "resnet34"


def test_unknown_name_suggests_the_closest(reg):
    with pytest.raises(UnknownModelError) as err:
        reg.get("resnet43")
    assert str(err.value).startswith("unknown model 'resnet43'; did you mean resnet34")


def test_unknown_name_finds_namespaced_models(reg):
    with pytest.raises(UnknownModelError, match="timm/vit_small_patch16_224"):
        reg.get("vit_smal_patch16_224")


def test_duplicate_name_names_both_sources(reg):
    with pytest.raises(DuplicateNameError, match="'resnet34' from 'other' is already registered by 'builtin'"):
        reg.register(spec("resnet34", source="other"))
    with pytest.raises(DuplicateNameError, match="book_net"):
        reg.register(spec("another", aliases=("book_net",), source="other"))


def test_override_replaces_on_purpose_and_is_recorded(reg):
    reg.register(spec("resnet34", family="custom", source="mine"), override=True)
    assert reg.get("resnet34").family == "custom"
    assert reg.overrides == [("resnet34", "builtin", "mine")]


@pytest.mark.parametrize(
    "bad",
    [
        dict(name="ResNet-34"),
        dict(name="resnet34", builder="no_colon"),
        dict(name="resnet34", input_size=(3, 224)),
        dict(name="resnet34", mean=(0.5,), std=(0.5, 0.5)),
    ],
)
def test_malformed_specs_are_refused(bad):
    fields = {"builder": "m:f", **bad}
    with pytest.raises(InvalidSpecError):
        ModelRegistry().register(ModelSpec(**fields))


def test_public_api_lists_builtins(fresh_plugins):
    import zoo

    assert "net" in zoo.list_models()
    assert zoo.list_models("ne?") == ["net"]
    assert zoo.get_spec("net").params == 18_090
    assert zoo.get_spec("net").source == "builtin"
