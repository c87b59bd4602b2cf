"""Hugging Face folders as runnable models: built with transformers from their config.

The model class follows the task (``AutoModel`` for embeddings, a head class for the
others), is created on the target device and takes the version's weights, read from the
store straight onto that device. Embeddings pool as sentence-transformers does: the
folder's ``modules.json`` and pooling config where it has them, else mean pooling over the
attention mask and L2 normalisation (all-MiniLM-L6-v2's recipe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.serving.kv_cache import cache_keyword, cache_of
from weightbase.serving.loading import (
    load_weights,
    read_json_file,
    read_weights,
    require_torch,
    snapshot_folder,
)
from weightbase.serving.runnable_base import HF_TASKS, Runnable
from weightbase.serving.runnable_outputs import (
    Classification,
    Generation,
    GenerationParams,
    TokenTag,
)

if TYPE_CHECKING:
    import numpy as np

    from weightbase.registry.records import ModelVersion
    from weightbase.serving.kv_cache import PrefixCache
    from weightbase.tensors import TensorStore
    from weightbase.tensors.manifest import Snapshot

__all__ = [
    "ClassifierRunnable",
    "EmbeddingRunnable",
    "GeneratorRunnable",
    "TaggerRunnable",
    "build_hf",
    "declared_task",
]

# The class suffixes of config.json's "architectures" and the task each head serves.
_HEADS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),  # GPT-2's GPT2LMHeadModel
)
# A tokenizer's own files; config.json alone does not make one.
_TOKENIZER_FILES = frozenset(
    {"tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model"}
)
_AUTO_CLASSES = {
    "embeddings": "AutoModel",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "text-generation": "AutoModelForCausalLM",
}


def declared_task(config: Mapping[str, Any]) -> str | None:
    """The task a config's ``architectures`` names: a head's, ``embeddings`` for a bare
    encoder (``BertModel``), None where it names none."""
    architectures = config.get("architectures") or ()
    for architecture in architectures if isinstance(architectures, list) else ():
        if not isinstance(architecture, str):
            continue
        for suffix, task in _HEADS:
            if architecture.endswith(suffix):
                return task
        if architecture.endswith("Model"):
            return "embeddings"
    return None


def require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise MissingExtraError(
            "serving a Hugging Face model needs transformers; "
            "install it with: pip install 'weightbase[hf]'",
            module="transformers",
            extra="hf",
        ) from None
    return transformers


class _HFRunnable(Runnable):
    """A transformers model, its tokenizer and the device they run on."""

    def __init__(
        self, task: str, version: ModelVersion, device: str, model: Any, tokenizer: Any
    ) -> None:
        super().__init__(task, version, device)
        self.model = model
        self.tokenizer = tokenizer

    def _encode(self, texts: Sequence[str], **options: Any) -> Any:
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise ValidationError("expected a list of strings")
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, return_tensors="pt", **options
        )
        return encoded.to(self.device)


class EmbeddingRunnable(_HFRunnable):
    """Sentence embeddings: ``embed(texts)`` is an ``(n, dim)`` float32 array."""

    pooling: str = "mean"
    normalize: bool = True
    max_length: int | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: Sequence[str]) -> tuple[np.ndarray[Any, Any], list[int]]:
        """``embed(texts)`` and the tokens each text was read as (its usage)."""
        torch = require_torch()
        if len(texts) == 0:
            import numpy as np

            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32), []
        encoded = self._encode(texts, max_length=self.max_length)
        with torch.inference_mode():
            hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
        else:
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        result: np.ndarray[Any, Any] = pooled.float().cpu().numpy()
        counts = encoded["attention_mask"].sum(dim=1).cpu().tolist()
        return result, [int(count) for count in counts]

    def predict(self, batch: Sequence[Any]) -> list[Any]:
        return list(self.embed(batch))


class ClassifierRunnable(_HFRunnable):
    """Text classification: ``classify(texts)`` gives each text's label and probabilities."""

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        torch = require_torch()
        if len(texts) == 0:
            return []
        encoded = self._encode(texts)
        with torch.inference_mode():
            logits = self.model(**encoded).logits.float()
        if self.model.config.problem_type == "multi_label_classification":
            probabilities = torch.sigmoid(logits)
        else:
            probabilities = torch.softmax(logits, dim=-1)
        labels = self.model.config.id2label
        out = []
        for row in probabilities.cpu().tolist():
            scores = {str(labels.get(i, i)): float(p) for i, p in enumerate(row)}
            best = max(range(len(row)), key=row.__getitem__)
            out.append(Classification(str(labels.get(best, best)), float(row[best]), scores))
        return out

    def predict(self, batch: Sequence[Any]) -> list[Any]:
        return list(self.classify(batch))


class TaggerRunnable(_HFRunnable):
    """Token classification: ``tag(texts)`` labels each text's tokens (special ones left out)."""

    def tag(self, texts: Sequence[str]) -> list[list[TokenTag]]:
        torch = require_torch()
        if len(texts) == 0:
            return []
        fast = bool(getattr(self.tokenizer, "is_fast", False))
        encoded = self._encode(texts, return_offsets_mapping=fast)
        offsets = encoded.pop("offset_mapping").tolist() if fast else None
        with torch.inference_mode():
            logits = self.model(**encoded).logits.float()
        probabilities = torch.softmax(logits, dim=-1).cpu()
        labels = self.model.config.id2label
        special = set(self.tokenizer.all_special_ids)
        out = []
        for row, ids in enumerate(encoded["input_ids"].cpu().tolist()):
            tags = []
            tokens = self.tokenizer.convert_ids_to_tokens(ids)
            for position, token_id in enumerate(ids):
                if token_id in special:
                    continue
                score, best = probabilities[row, position].max(dim=-1)
                start, end = offsets[row][position] if offsets is not None else (None, None)
                token = texts[row][start:end] if start is not None else tokens[position]
                label = str(labels.get(int(best), int(best)))
                tags.append(TokenTag(token, label, float(score), start, end))
            out.append(tags)
        return out

    def predict(self, batch: Sequence[Any]) -> list[Any]:
        return list(self.tag(batch))


class GeneratorRunnable(_HFRunnable):
    """Text generation: ``generate(prompts, params)``, greedy or sampled."""

    def generate(
        self,
        prompts: Sequence[str],
        params: GenerationParams | None = None,
        *,
        prefix_cache: PrefixCache | None = None,
    ) -> list[Generation]:
        """Each prompt's continuation. With a ``prefix_cache``, a prompt that begins as a
        recent one did reuses that prefix's keys and values and runs alone; the others
        run as one batch, and one of them is remembered for the next requests."""
        params = params or GenerationParams()
        if len(prompts) == 0:
            return []
        if prefix_cache is None:
            return self._generate_batch(prompts, params)
        self._encode(prompts)  # refuses what is not a list of strings
        results: list[Generation | None] = [None] * len(prompts)
        missed: list[tuple[int, list[int]]] = []
        for index, prompt in enumerate(prompts):
            ids = self.prompt_ids(prompt)
            _, cache = prefix_cache.lookup(ids)
            if cache is None:
                missed.append((index, ids))
            else:
                results[index] = self._generate_one(ids, params, cache, prefix_cache)
        if len(missed) == 1:
            index, ids = missed[0]
            results[index] = self._generate_one(ids, params, None, prefix_cache)
        elif missed:
            batch = self._generate_batch([prompts[index] for index, _ in missed], params)
            for (index, _), generation in zip(missed, batch, strict=True):
                results[index] = generation
            self._remember(missed[0][1], prefix_cache)
        return [generation for generation in results if generation is not None]

    def prompt_ids(self, prompt: str) -> list[int]:
        """The token ids the model reads for ``prompt``."""
        return list(self._encode([prompt])["input_ids"][0].tolist())

    def generation_options(self, params: GenerationParams) -> dict[str, Any]:
        """``generate``'s keyword arguments for ``params`` (seeding torch where asked)."""
        options: dict[str, Any] = {"max_new_tokens": params.max_tokens, "do_sample": False}
        if params.sampling:
            options.update(do_sample=True, temperature=params.temperature, top_k=params.top_k or 0)
            if params.top_p is not None:
                options["top_p"] = params.top_p
            if params.seed is not None:
                require_torch().manual_seed(params.seed)
        return options

    def _generate_batch(self, prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        torch = require_torch()
        encoded = self._encode(prompts)
        options = self.generation_options(params)
        # only ids and mask: token type ids a BERT-style tokenizer adds would be embedded by
        # the prompt's forward but not by the generated tokens' (GPT-2 adds them as words)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=encoded["input_ids"],
                attention_mask=encoded["attention_mask"],
                pad_token_id=self.tokenizer.pad_token_id,
                **options,
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :].cpu().tolist()
        stops = self.stop_tokens()
        return [self._finish(tokens, stops, params) for tokens in new_tokens]

    def _generate_one(
        self, ids: list[int], params: GenerationParams, cache: Any, prefix_cache: PrefixCache
    ) -> Generation:
        """One prompt's continuation from ``cache`` (its prefix's keys and values, or None);
        the prompt's own cache is remembered."""
        torch = require_torch()
        input_ids = torch.tensor([ids], device=self.device)
        options = self.generation_options(params)
        if cache is not None:
            options[cache_keyword(self.model)] = cache
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                pad_token_id=self.tokenizer.pad_token_id,
                return_dict_in_generate=True,
                **options,
            )
        prefix_cache.store(ids, cache_of(output))
        tokens = output.sequences[0, len(ids) :].cpu().tolist()
        return self._finish(tokens, self.stop_tokens(), params)

    def _remember(self, ids: list[int], prefix_cache: PrefixCache) -> None:
        """Compute and keep the keys and values of ``ids`` but its last token."""
        torch = require_torch()
        if len(ids) - 1 < prefix_cache.min_tokens:
            return
        from transformers import DynamicCache

        with torch.inference_mode():
            output = self.model(
                input_ids=torch.tensor([ids[:-1]], device=self.device),
                use_cache=True,
                **{cache_keyword(self.model): DynamicCache()},
            )
        prefix_cache.store(ids, cache_of(output))

    def stop_tokens(self) -> set[int]:
        """The end-of-text token ids."""
        eos = self.model.generation_config.eos_token_id
        return {eos} if isinstance(eos, int) else set(eos or ())

    def _finish(self, tokens: list[int], stops: set[int], params: GenerationParams) -> Generation:
        ended = next((i for i, token in enumerate(tokens) if token in stops), None)
        kept = tokens if ended is None else tokens[:ended]
        text = self._decode(kept)
        cut = min((i for i in (text.find(stop) for stop in params.stop) if i >= 0), default=None)
        if cut is not None:
            # the tokens wholly before the stop string
            count = 0
            while count < len(kept) and len(self._decode(kept[: count + 1])) <= cut:
                count += 1
            return Generation(text[:cut], count, "stop")
        return Generation(text, len(kept), "stop" if ended is not None else "length")

    def _decode(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True))

    def predict(self, batch: Sequence[Any]) -> list[Any]:
        return list(self.generate(batch))


_RUNNABLES: dict[str, type[_HFRunnable]] = {
    "embeddings": EmbeddingRunnable,
    "text-classification": ClassifierRunnable,
    "token-classification": TaggerRunnable,
    "text-generation": GeneratorRunnable,
}


def build_hf(
    store: TensorStore, snapshot: Snapshot, task: str, version: ModelVersion, device: str
) -> Runnable:
    """Build the Hugging Face folder in ``snapshot`` for ``task`` on ``device``."""
    if task not in HF_TASKS:  # pragma: no cover - checked by load_runnable
        raise ValidationError(f"unknown task {task!r}", task=task)
    transformers = require_transformers()
    torch = require_torch()
    if not _TOKENIZER_FILES & set(snapshot.files):
        # transformers would build an empty tokenizer from config.json alone
        raise ValidationError(
            f"{version.ref} has no usable config or tokenizer files (none of "
            f"{', '.join(sorted(_TOKENIZER_FILES))}); push the model's folder",
            version=version.ref,
        )
    with snapshot_folder(store, snapshot) as folder:
        try:
            config = transformers.AutoConfig.from_pretrained(folder)
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise ValidationError(
                f"{version.ref} has no usable config or tokenizer files ({exc})",
                version=version.ref,
            ) from None
    auto = getattr(transformers, _AUTO_CLASSES[task])
    try:
        with torch.device(device):
            model = auto.from_config(config, dtype=_stored_dtype(torch, snapshot))
    except ValueError as exc:  # no class of this task for the config's model type
        raise ValidationError(
            f"{version.ref} ({config.model_type}) cannot serve {task}: {exc}", task=task
        ) from None
    state = _fit_prefix(model, read_weights(store, snapshot, device))
    load_weights(model, state, what=f"{type(model).__name__} ({version.ref})")
    model.tie_weights()
    model.eval()
    if task == "text-generation":
        tokenizer.padding_side = "left"  # generation continues each prompt's last token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    runnable = _RUNNABLES[task](task, version, device, model, tokenizer)
    if isinstance(runnable, EmbeddingRunnable):
        _configure_pooling(runnable, store, snapshot, config)
    return runnable


def _stored_dtype(torch: Any, snapshot: Snapshot) -> Any:
    """The one float dtype the weights are stored in (a bf16 model is served in bf16, not
    widened to float32), else float32."""
    floats = {entry.dtype for entry in snapshot.tensors.values()} & set(_SERVED_DTYPES)
    return getattr(torch, _SERVED_DTYPES[floats.pop()]) if len(floats) == 1 else torch.float32


# the store's dtype names (safetensors') of the float types a model is built in
_SERVED_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}


def _fit_prefix(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Weights saved with or without the base model's prefix (``bert.``), fitted to ``model``.

    A base model built from a head model's weights drops the head, as ``from_pretrained``.
    """
    own = set(model.state_dict())
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    if prefix == "." or own & set(state):
        return state
    stripped = {
        name.removeprefix(prefix): value for name, value in state.items() if name.startswith(prefix)
    }
    if own & set(stripped):
        return stripped
    added = {prefix + name: value for name, value in state.items()}
    return added if own & set(added) else state


def _configure_pooling(
    runnable: EmbeddingRunnable, store: TensorStore, snapshot: Snapshot, config: Any
) -> None:
    """Pooling, normalisation and length as the folder's sentence-transformers files say."""
    modules = read_json_file(store, snapshot, "modules.json")
    if isinstance(modules, list):
        kinds = {str(module.get("type", "")).rsplit(".", 1)[-1]: module for module in modules}
        runnable.normalize = "Normalize" in kinds
        pooling = kinds.get("Pooling")
        path = str(pooling.get("path", "")) if pooling else ""
        settings = read_json_file(store, snapshot, f"{path}/config.json") if path else None
        if isinstance(settings, dict):
            if settings.get("pooling_mode_cls_token"):
                runnable.pooling = "cls"
            elif settings.get("pooling_mode_max_tokens"):
                runnable.pooling = "max"
    sentence = read_json_file(store, snapshot, "sentence_bert_config.json")
    limit = sentence.get("max_seq_length") if isinstance(sentence, dict) else None
    positions = getattr(config, "max_position_embeddings", None)
    runnable.max_length = limit if isinstance(limit, int) else positions
