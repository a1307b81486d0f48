"""TorchServe model archives (.mar): a zip with MAR-INF/MANIFEST.json, weights and handler code.

Every member is scanned by its own format, as in any zip (handler and model .py files get the
Python analysis, serialized weights the pickle walk). The manifest then says what the server
will run: a handler that is not one of TorchServe's built-ins is custom code executed when the
model is registered (MA-H001), and a requirements file is installed with pip (MA-H010).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import BudgetExceeded
from ._zip import STRICT_READ_ERRORS, open_zip, read_member
from .base import BaseScanner
from .containers import ZipScanner

MANIFEST = "MAR-INF/MANIFEST.json"
MAX_MANIFEST = 1024 * 1024
BUILTIN_HANDLERS = frozenset({"image_classifier", "image_segmenter", "object_detector", "text_classifier",
                              "text_handler", "vision_handler", "base_handler", "densenet_handler"})


class TorchServeScanner(BaseScanner):
    name = "torchserve"
    description = "TorchServe model archives (.mar): manifest, custom handlers and requirements, every member"
    supported_extensions = [".mar"]
    formats = ("torchserve",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        ZipScanner().check(blob, result, ctx)
        manifest, names = None, set()  # stay unset when open_zip stops on a broken archive
        with open_zip(blob, result) as zf:
            if zf is None:
                return
            info = next((i for i in zf.infolist() if i.filename == MANIFEST), None)
            if info is None:
                result.report("MA-H009", f"TorchServe archive has no {MANIFEST}", blob.location, {})
                result.add_check("torchserve manifest", False, "manifest missing", blob.location)
                return
            manifest = _manifest(zf, info, blob.location, result)
            names = {i.filename for i in zf.infolist()}
        if manifest is None:
            return
        model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
        before = len(result.issues)
        _check_handler(model, names, blob.location, result)
        requirements = model.get("requirementsFile")
        if isinstance(requirements, str) and requirements:
            result.report("MA-H010", f"TorchServe installs the packages in {requirements} with pip when the model is "
                          f"registered{'' if requirements in names else ' (the file is not in the archive)'}",
                          f"{blob.location}:{requirements}", {"requirements": requirements})
        result.add_check("torchserve manifest", len(result.issues) == before,
                         f"handler {model.get('handler')!r}", blob.location)


def _manifest(zf, info, where: str, result) -> dict[str, Any] | None:  # noqa: ANN001
    try:
        raw = read_member(zf, info, MAX_MANIFEST)
    except STRICT_READ_ERRORS as exc:  # a damaged local header or compressed stream
        result.report("MA-H009", f"{MANIFEST} cannot be read: {type(exc).__name__}: {exc}", f"{where}:{MANIFEST}",
                      {"error": str(exc)})
        result.mark_incomplete()
        return None
    except BudgetExceeded:
        result.report("MA-H011", f"{MANIFEST} is larger than {MAX_MANIFEST} bytes; not inspected", where, {})
        result.mark_incomplete()
        return None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        result.report("MA-H009", f"{MANIFEST} is not valid JSON: {exc}", f"{where}:{MANIFEST}", {"error": str(exc)})
        result.mark_incomplete()
        return None
    if not isinstance(data, dict):
        result.report("MA-H009", f"{MANIFEST} is not a JSON object", f"{where}:{MANIFEST}", {})
        return None
    return data


def _check_handler(model: dict[str, Any], names: set[str], where: str, result) -> None:  # noqa: ANN001
    handler = model.get("handler")
    code = []
    if isinstance(handler, str) and handler and not _builtin(handler):
        code.append(("handler", handler.split(":", 1)[0]))
    model_file = model.get("modelFile")
    if isinstance(model_file, str) and model_file:
        code.append(("model definition", model_file))
    for role, target in code:
        module = target if target.endswith(".py") else target.replace(".", "/") + ".py"
        present = "in the archive" if module in names else "not in the archive (imported from the server's path)"
        result.report("MA-H001", f"TorchServe imports and runs the {role} {target} ({present}) when the model is "
                      "served", f"{where}:{module}", {"role": role, "module": target, "present": module in names})


def _builtin(handler: str) -> bool:
    name = handler.split(":", 1)[0]
    return name in BUILTIN_HANDLERS or (name.startswith("ts.torch_handler.")
                                        and name.rsplit(".", 1)[-1] in BUILTIN_HANDLERS)
