"""Choosing how to write an object to a file (by its type) and how to read it back (by extension).

Types are matched by their qualified name (``numpy.ndarray``, ``matplotlib.figure.Figure``),
walking the object's MRO, so no optional library is imported until an object of its type is
saved. Savers added with ``add_saver`` beat the built-in ones for the same class.
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expq.errors import InputError

__all__ = ["Saver", "SaverRegistry", "FIGURE_FORMATS", "type_key", "register_loader"]

SaveFn = Callable[[Any, Path], None]
LoadFn = Callable[[Path], Any]
FIGURE_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp", "pgf")
TEXT_FORMATS = ("txt", "md", "log", "csv", "html", "tex", "rst")


@dataclass(frozen=True)
class Saver:
    """How one type is written: ``save(obj, path)`` and the file extensions it may write."""

    save: SaveFn
    exts: tuple[str, ...]

    @property
    def ext(self) -> str:
        return self.exts[0]


def type_key(cls: type) -> str:
    """``module.QualName`` of a class, the registry key that needs no import of its library."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _json_default(obj: Any) -> Any:
    for method in ("tolist", "item"):  # numpy arrays and scalars nested in dicts/lists
        convert = getattr(obj, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def save_json(obj: Any, path: Path) -> None:
    try:
        text = json.dumps(obj, indent=2, default=_json_default)
    except (TypeError, ValueError) as error:
        raise InputError(
            f"cannot save {type(obj).__name__} as JSON ({error}); use add_saver() or save_pickle()"
        ) from error
    path.write_text(text + "\n", encoding="utf-8")


def _save_numpy_scalar(obj: Any, path: Path) -> None:
    save_json(obj.item(), path)


def _save_text(obj: str, path: Path) -> None:
    path.write_text(obj, encoding="utf-8")


def _save_bytes(obj: Any, path: Path) -> None:
    path.write_bytes(bytes(obj))


def _save_array(obj: Any, path: Path) -> None:
    import numpy as np

    with open(path, "wb") as handle:  # a handle: np.save would append .npy to a temp name
        np.save(handle, obj, allow_pickle=False)


def _save_figure(obj: Any, path: Path) -> None:
    fmt = path.suffix.lstrip(".").lower() or "png"
    obj.savefig(path, format="jpeg" if fmt == "jpg" else fmt)


def _save_torch(obj: Any, path: Path) -> None:
    import torch

    state = obj.state_dict() if hasattr(obj, "state_dict") and not isinstance(obj, torch.Tensor) else obj
    with open(path, "wb") as handle:
        torch.save(state, handle)


def save_pickle(obj: Any, path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)


_BUILTIN: dict[str, Saver] = {
    **{f"builtins.{name}": Saver(save_json, ("json",)) for name in ("dict", "list", "tuple", "int", "float", "bool", "NoneType")},
    "builtins.str": Saver(_save_text, TEXT_FORMATS),
    "builtins.bytes": Saver(_save_bytes, ("bin",)),
    "builtins.bytearray": Saver(_save_bytes, ("bin",)),
    "builtins.memoryview": Saver(_save_bytes, ("bin",)),
    "numpy.ndarray": Saver(_save_array, ("npy",)),
    "numpy.generic": Saver(_save_numpy_scalar, ("json",)),
    "matplotlib.figure.Figure": Saver(_save_figure, FIGURE_FORMATS),
    "matplotlib.figure.SubFigure": Saver(_save_figure, FIGURE_FORMATS),
    "torch.Tensor": Saver(_save_torch, ("pt",)),
    "torch.nn.modules.module.Module": Saver(_save_torch, ("pt",)),
}


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _load_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _load_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _load_array(path: Path) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


def _load_png(path: Path) -> Any:
    from matplotlib import image

    return image.imread(path)


def _load_torch(path: Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu")


def load_pickle(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)


_LOADERS: dict[str, LoadFn] = {
    "json": _load_json,
    **{ext: _load_text for ext in TEXT_FORMATS},
    "bin": _load_bytes,
    "npy": _load_array,
    "png": _load_png,
    "pt": _load_torch,
    "pkl": load_pickle,
}


# Loaders given to ``add_saver`` in this process, by extension: ``expq.open(run).load(name)`` has
# no experiment to ask, and a type saved with add_saver must read back the same way. The most
# recent registration of an extension wins (a reader of another process's files passes
# ``loader=`` to ``StoredRun.load``, or calls ``register_loader`` first).
_added_loaders: dict[str, LoadFn] = {}


def register_loader(ext: str, load: LoadFn) -> None:
    """Read files ending in ``.ext`` with ``load(path)`` wherever no experiment says otherwise."""
    _added_loaders[ext.lstrip(".").lower()] = load


class SaverRegistry:
    """The savers and loaders one experiment uses: the built-ins plus those added by the user."""

    def __init__(self) -> None:
        self._savers: dict[object, Saver] = {}
        self._loaders: dict[str, LoadFn] = {}

    def add(self, cls: type | str, save: SaveFn, ext: str, load: LoadFn | None = None) -> None:
        """Save objects of ``cls`` (a class or ``"module.QualName"``) with ``save(obj, path)`` as ``.ext``.

        Raises:
            InputError: an extension that is empty or not a plain word.
        """
        ext = ext.lstrip(".")
        if not ext or not ext.replace("_", "").isalnum():
            raise InputError(f"invalid saver extension {ext!r}: use letters and digits, e.g. 'npz'")
        self._savers[cls if isinstance(cls, str) else type_key(cls)] = Saver(save, (ext,))
        if load is not None:
            self._loaders[ext.lower()] = load
            register_loader(ext, load)

    def saver_for(self, obj: Any) -> Saver:
        """The most specific saver for ``obj``'s class.

        Raises:
            InputError: no saver takes this type.
        """
        for cls in type(obj).__mro__:
            key = type_key(cls)
            saver = self._savers.get(key) or _BUILTIN.get(key)
            if saver is not None:
                return saver
        raise InputError(
            f"no saver for objects of type {type_key(type(obj))}: "
            "register one with add_saver(type, fn, ext), or use save_pickle() to pickle it"
        )

    def loader_for(self, path: Path) -> LoadFn:
        """The loader for a file, chosen by its extension; unknown extensions give raw bytes."""
        ext = path.suffix.lstrip(".").lower()
        return self._loaders.get(ext) or _added_loaders.get(ext) or _LOADERS.get(ext) or _load_bytes

