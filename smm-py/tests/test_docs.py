"""Every public function and method says what each of its parameters is."""

import inspect
import re

import smm_core


def _callables():
    for name in smm_core.__all__:
        obj = getattr(smm_core, name)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                continue
            for m, f in vars(obj).items():
                if not m.startswith("_") and callable(f):
                    yield f"{name}.{m}", getattr(obj, m)
        elif callable(obj):
            yield name, obj
    from smm_core import distributed, plot

    for mod in (distributed, plot):
        for name, obj in vars(mod).items():
            if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == mod.__name__:
                yield f"{mod.__name__}.{name}", obj


def test_every_parameter_is_documented():
    missing = {}
    for name, obj in _callables():
        doc = inspect.getdoc(obj) or ""
        try:
            params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
        except (TypeError, ValueError):
            continue
        if not doc:
            missing[name] = ["(no docstring)"]
            continue
        gaps = [p for p in params if not re.search(r"\b%s\b" % re.escape(p), doc)]
        if gaps:
            missing[name] = gaps
        # A "Parameters:" list names only real parameters.
        if "Parameters:" in doc:
            listed = re.findall(r"^- (\w+):", doc.split("Parameters:", 1)[1], re.M)
            extra = [p for p in listed if p not in params]
            if extra:
                missing[name + " (documents unknown)"] = extra
    assert not missing, missing
