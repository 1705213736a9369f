"""Hook implementations run in pluggy's order: tryfirst first, trylast last, wrappers around the call."""

import zoo
from zoo import ModelSpec
from zoo.plugins import PluginInfo, ZooPluginManager


def _spec(name):
    return ModelSpec(name=name, builder="zoo.models.lecture:net", input_size=(3, 32, 32), num_classes=2)


def _plugins(calls):
    class Late:
        @zoo.hookimpl(trylast=True)
        def register_models(self, register):
            calls.append("trylast")

    class Early:
        @zoo.hookimpl(tryfirst=True)
        def register_models(self, register):
            calls.append("tryfirst")
            register(_spec("order_early"))

    class First:
        @zoo.hookimpl
        def register_models(self, register):
            calls.append("first registered")

    class Second:
        @zoo.hookimpl
        def register_models(self, register):
            calls.append("second registered")

    class Wrapper:
        @zoo.hookimpl(wrapper=True)
        def register_models(self, register):
            calls.append("wrapper before")
            result = yield
            calls.append(f"wrapper after {result!r}")
            register(_spec("order_wrapped"))
            return result

    class OldWrapper:
        @zoo.hookimpl(hookwrapper=True)
        def register_models(self, register):
            calls.append("hookwrapper before")
            outcome = yield
            calls.append(f"hookwrapper after {outcome.get_result()!r}")

    return [Late(), Early(), First(), Second(), Wrapper(), OldWrapper()]


def test_tryfirst_trylast_and_wrappers_follow_pluggy():
    calls = []
    manager = ZooPluginManager()  # no built-ins: just these, in this registration order
    for obj in _plugins(calls):
        name = type(obj).__name__
        manager.plugins[name] = info = PluginInfo(name=name, module=name, builtin=False)
        manager._register(obj, info)
    manager._run_hook("register_models")
    assert calls == [
        "hookwrapper before", "wrapper before",  # the last registered wrapper is the outermost
        "tryfirst", "second registered", "first registered", "trylast",  # pluggy: last registered first
        "wrapper after []", "hookwrapper after []",
    ]
    assert "order_early" in manager.models and "order_wrapped" in manager.models
    assert manager.plugins["Wrapper"].registered == {"models": ["order_wrapped"]}
    assert not manager.failures()


def test_builtins_still_run_before_entry_points(fresh_plugins):
    manager = fresh_plugins.get_manager()
    # zoo registers in reverse so that pluggy's last-registered-first order starts with the built-ins.
    order = [i.plugin_name for i in reversed(manager.pm.hook.register_models.get_hookimpls())]
    builtins = [name for name, _ in fresh_plugins.DEFAULT_PLUGINS if name in order]
    assert order[: len(builtins)] == builtins


def test_a_wrapper_that_raises_is_recorded_and_the_others_still_register(fresh_plugins):
    class Broken:
        @zoo.hookimpl(wrapper=True)
        def register_models(self, register):
            register(_spec("from_broken_wrapper"))
            yield
            raise RuntimeError("wrapper failed after the call")

    class Good:
        @zoo.hookimpl
        def register_models(self, register):
            register(_spec("after_broken_wrapper"))

    manager = fresh_plugins.get_manager()
    manager.register_plugin(Good(), "good")
    info = manager.register_plugin(Broken(), "broken")
    assert "after_broken_wrapper" in manager.models and "from_broken_wrapper" not in manager.models
    assert info.errors and "wrapper failed after the call" in info.errors[0]
