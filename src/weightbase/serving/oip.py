"""The Open Inference Protocol (KServe v2 / Triton) endpoints under ``/v2``.

Text models take one ``BYTES`` input of shape ``[N]`` (one text per row); a predict
model takes one numeric tensor whose first dimension is the batch. A missing field, a
datatype the model cannot take or data that does not fill the shape is a 422 naming the
input and the field.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from weightbase.errors import ModelUnavailableError, ValidationError
from weightbase.serving.engine import InferenceEngine
from weightbase.serving.runnable_outputs import GenerationParams

__all__ = ["DATATYPES", "infer_answer", "router"]

router = APIRouter(prefix="/v2")

#: The tensor datatypes of the protocol and their numpy dtypes (``BYTES``: strings).
DATATYPES: dict[str, str] = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
    "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}  # fmt: skip
_NUMPY = {np.dtype(v).name: k for k, v in DATATYPES.items() if k != "BYTES"}
# the operation each task answers, and its outputs' names
_TEXT_TASKS = {
    "embeddings": "embed",
    "text-classification": "classify",
    "token-classification": "tag",
    "text-generation": "generate",
}
_GENERATION_KEYS = ("temperature", "top_k", "top_p", "max_tokens", "stop", "seed")


def _engine(request: Request) -> InferenceEngine:
    engine: InferenceEngine = request.app.state.engine
    return engine


@router.get("/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready")
async def ready(request: Request) -> Any:
    failed = any(m["state"] == "failed" for m in _engine(request).pool.describe().values())
    return JSONResponse({"ready": not failed}, status_code=503 if failed else 200)


@router.get("")
async def server_metadata() -> dict[str, Any]:
    return {"name": "weightbase", "version": _version(), "extensions": []}


def _version() -> str:
    # the installed distribution's: the package facade is an interface, above this layer
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("weightbase")
    except PackageNotFoundError:
        return "unknown"


@router.get("/models/{name}")
async def model_metadata(request: Request, name: str) -> Any:
    model = _engine(request).pool.state(name)  # NotFound: 404
    try:
        model, runnable = await _engine(request).runnable(name)
    except ModelUnavailableError:
        return {
            "name": model.name,
            "versions": [],
            "platform": "weightbase",
            "ref": model.ref,
            "state": model.state,
            "error": model.error,
            "inputs": [],
            "outputs": [],
        }
    task = runnable.task
    if task in _TEXT_TASKS:
        inputs = [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    else:
        inputs = [{"name": "input", "datatype": "FP32", "shape": [-1, -1]}]
    return {
        "name": model.name,
        "versions": [runnable.version.version],
        "platform": "weightbase",
        "ref": model.ref,
        "task": task,
        "state": model.state,
        "error": None,
        "inputs": inputs,
        "outputs": _outputs_of(task),
    }


@router.get("/models/{name}/ready")
async def model_ready(request: Request, name: str) -> Any:
    model = _engine(request).pool.state(name)
    try:
        await _engine(request).runnable(name)
    except ModelUnavailableError:
        body = {"name": model.name, "ready": False, "error": model.error}
        return JSONResponse(body, status_code=503)
    return {"name": model.name, "ready": True}


async def infer_answer(engine: InferenceEngine, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer of ``POST /v2/models/{name}/infer`` with ``body`` (served by
    :mod:`weightbase.serving.hot_routes`, without the web framework)."""
    tensor = _one_input(body)
    model, runnable = await engine.runnable(name)
    operation = _TEXT_TASKS.get(runnable.task)
    if operation is not None:
        if tensor["datatype"] != "BYTES":
            raise ValidationError(
                f"inputs[0] ({tensor['name']}): model {model.name} takes texts, datatype "
                f"BYTES, not {tensor['datatype']}",
                field="inputs[0].datatype",
            )
        texts = _values(tensor)
        params = _generation(body) if operation == "generate" else None
        answer = await engine.infer(model.name, operation, list(texts), params)
        outputs = _text_outputs(runnable.task, answer.outputs)
    else:
        rows = _values(tensor)
        answer = await engine.infer(model.name, "predict", rows)
        outputs = [_tensor("output", answer.outputs)]
    response: dict[str, Any] = {
        "model_name": model.name,
        "model_version": runnable.version.version,
        "outputs": outputs,
        "parameters": {"cached": answer.cached},
    }
    if isinstance(body.get("id"), str):
        response["id"] = body["id"]
    return response


def _one_input(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ValidationError("'inputs' is required: a non-empty list of tensors", field="inputs")
    if len(inputs) != 1:
        raise ValidationError(
            f"the model takes one input tensor, not {len(inputs)}", field="inputs"
        )
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise ValidationError("inputs[0] must be an object", field="inputs[0]")
    for field in ("name", "shape", "datatype", "data"):
        if field not in tensor:
            raise ValidationError(f"inputs[0].{field} is required", field=f"inputs[0].{field}")
    label = f"inputs[0] ({tensor['name']})"
    shape = tensor["shape"]
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ValidationError(
            f"{label}: shape must be a non-empty list of sizes, not {shape!r}",
            field="inputs[0].shape",
        )
    if tensor["datatype"] not in DATATYPES:
        raise ValidationError(
            f"{label}: datatype {tensor['datatype']!r} is not one of {', '.join(DATATYPES)}",
            field="inputs[0].datatype",
        )
    return tensor


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [item for part in data for item in _flatten(part)]
    return [data]


def _values(tensor: dict[str, Any]) -> list[Any]:
    """The tensor's rows: texts for BYTES, else numpy arrays of the first dimension."""
    label = f"inputs[0] ({tensor['name']})"
    shape, datatype = tensor["shape"], tensor["datatype"]
    needed = math.prod(shape)
    if datatype == "BYTES":
        flat = _flatten(tensor["data"])
        if len(flat) != needed:
            raise _size_error(label, shape, needed, len(flat))
        if not all(isinstance(item, str) for item in flat):
            raise ValidationError(f"{label}: BYTES data must be strings", field="inputs[0].data")
        if math.prod(shape[1:]) != 1:
            raise ValidationError(
                f"{label}: texts come one per row, shape [N] or [N, 1], not {shape}",
                field="inputs[0].shape",
            )
        return flat
    # numbers, flat or nested row-major: numpy reads them at C speed; anything that is not
    # a number (a string, null, an object) or rows of unequal length make no numeric array
    try:
        given = np.asarray(tensor["data"])
    except (TypeError, ValueError, OverflowError):
        given = np.asarray([], dtype=object)
    if given.dtype.kind not in "biuf":
        raise ValidationError(
            f"{label}: {datatype} data must be numbers, in rows of equal length",
            field="inputs[0].data",
        )
    if given.size != needed:
        raise _size_error(label, shape, needed, given.size)
    dtype = np.dtype(DATATYPES[datatype])
    if dtype.kind in "iu" and given.size:
        bounds = np.iinfo(dtype)
        # among floats, the largest integer + 1 is the first value past it
        past = given.max() >= float(bounds.max) + 1 if given.dtype.kind == "f" else None
        if past is None:
            past = given.max() > bounds.max
        if given.min() < bounds.min or past:
            raise ValidationError(
                f"{label}: data is not {datatype} (values outside {bounds.min}..{bounds.max})",
                field="inputs[0].data",
            )
    return list(given.astype(dtype, copy=False).reshape(shape))


def _size_error(label: str, shape: list[int], needed: int, given: int) -> ValidationError:
    return ValidationError(
        f"{label}: shape {shape} needs {needed} values, data has {given}",
        field="inputs[0].data",
    )


def _generation(body: dict[str, Any]) -> GenerationParams:
    given = body.get("parameters") or {}
    if not isinstance(given, dict):
        raise ValidationError("'parameters' must be an object", field="parameters")
    chosen = {key: given[key] for key in _GENERATION_KEYS if key in given}
    if isinstance(chosen.get("stop"), list):
        chosen["stop"] = tuple(chosen["stop"])
    try:
        return GenerationParams(**chosen)
    except TypeError as exc:
        raise ValidationError(f"parameters: {exc}", field="parameters") from None


def _outputs_of(task: str) -> list[dict[str, Any]]:
    if task == "embeddings":
        return [{"name": "embedding", "datatype": "FP32", "shape": [-1, -1]}]
    if task == "text-classification":
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
        ]
    if task == "token-classification":
        return [{"name": "tags", "datatype": "BYTES", "shape": [-1]}]
    if task == "text-generation":
        return [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}]
    return [{"name": "output", "datatype": "FP32", "shape": [-1]}]


def _text_outputs(task: str, outputs: list[Any]) -> list[dict[str, Any]]:
    if task == "embeddings":
        return [_tensor("embedding", [output["embedding"] for output in outputs])]
    if task == "text-classification":
        return [
            _tensor("label", [o["label"] for o in outputs]),
            _tensor("score", [o["score"] for o in outputs], "FP32"),
        ]
    if task == "token-classification":
        return [_tensor("tags", [json.dumps(tags) for tags in outputs])]
    return [_tensor("text_output", [o["text"] for o in outputs])]


def _tensor(name: str, rows: list[Any], datatype: str | None = None) -> dict[str, Any]:
    """Rows as one output tensor: numbers stacked, anything else as JSON ``BYTES``."""
    if rows and all(isinstance(row, str) for row in rows):
        return {"name": name, "datatype": "BYTES", "shape": [len(rows)], "data": rows}
    try:
        array = np.asarray(rows)
    except ValueError:
        array = np.asarray([], dtype=object)
    if array.dtype.name in _NUMPY and array.size == math.prod(array.shape) and len(rows) > 0:
        kind = datatype or _NUMPY[array.dtype.name]
        if kind == "FP64":
            kind = "FP32"  # a model's floats, not more precise for being JSON
        return {
            "name": name,
            "datatype": kind,
            "shape": list(array.shape),
            "data": array.reshape(-1).tolist(),
        }
    data = [json.dumps(row) for row in rows]
    return {"name": name, "datatype": "BYTES", "shape": [len(rows)], "data": data}
