"""Units a point may be sent in, and how to convert it into its definition's unit. A small table on purpose:
the conversions condition monitoring meets (temperature, pressure, speed, flow, vibration, power); a unit not in
it is only ever equal to itself."""

from collections.abc import Callable

# unit → (dimension, to base, from base)
_LINEAR = {
    # temperature is affine, below
    "bar": ("pressure", 1e5),
    "mbar": ("pressure", 1e2),
    "pa": ("pressure", 1.0),
    "kpa": ("pressure", 1e3),
    "mpa": ("pressure", 1e6),
    "psi": ("pressure", 6894.757293168),
    "rpm": ("rotation", 1.0),
    "hz": ("rotation", 60.0),  # revolutions per second
    "m3/h": ("flow", 1.0),
    "l/min": ("flow", 0.06),
    "l/s": ("flow", 3.6),
    "mm/s": ("velocity", 1e-3),
    "m/s": ("velocity", 1.0),
    "in/s": ("velocity", 0.0254),
    "w": ("power", 1.0),
    "kw": ("power", 1e3),
    "mw": ("power", 1e6),
    "hp": ("power", 745.6998715822702),
    "a": ("current", 1.0),
    "ma": ("current", 1e-3),
    "v": ("voltage", 1.0),
    "kv": ("voltage", 1e3),
    "mv": ("voltage", 1e-3),
    "%": ("ratio", 1.0),
    "h": ("time", 3600.0),
    "min": ("time", 60.0),
    "s": ("time", 1.0),
}
_TEMPERATURE = {  # to kelvin, from kelvin
    "°c": (lambda v: v + 273.15, lambda k: k - 273.15),
    "c": (lambda v: v + 273.15, lambda k: k - 273.15),
    "degc": (lambda v: v + 273.15, lambda k: k - 273.15),
    "°f": (lambda v: (v - 32) * 5 / 9 + 273.15, lambda k: (k - 273.15) * 9 / 5 + 32),
    "f": (lambda v: (v - 32) * 5 / 9 + 273.15, lambda k: (k - 273.15) * 9 / 5 + 32),
    "degf": (lambda v: (v - 32) * 5 / 9 + 273.15, lambda k: (k - 273.15) * 9 / 5 + 32),
    "k": (lambda v: v, lambda k: k),
}


def _key(unit: str) -> str:
    return (unit or "").strip().lower().replace(" ", "").replace("º", "°")


def same_unit(a: str, b: str) -> bool:
    return _key(a) == _key(b)


def converter(source: str, target: str) -> Callable[[float], float] | None:
    """A function converting values from `source` into `target`, or None when they measure different things (or
    either is unknown). The identity when both name the same unit."""
    s, t = _key(source), _key(target)
    if s == t:
        return lambda value: value
    if s in _TEMPERATURE and t in _TEMPERATURE:
        to_kelvin, from_kelvin = _TEMPERATURE[s][0], _TEMPERATURE[t][1]
        return lambda value: from_kelvin(to_kelvin(value))
    if s in _LINEAR and t in _LINEAR and _LINEAR[s][0] == _LINEAR[t][0]:
        factor = _LINEAR[s][1] / _LINEAR[t][1]
        return lambda value: value * factor
    return None
