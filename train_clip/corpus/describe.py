"""Ask an MLLM behind any OpenAI-compatible chat-completions endpoint to describe each image of a dataset.

UniQA's corpus (paper, section 3): each IQA/IAA image gets a description of its quality or aesthetics,
written by an MLLM that is told the image's human rating level (see :mod:`.levels`), so the text
agrees with human opinion. Prompts come from an editable YAML (:mod:`.prompts`).

A run over a big dataset takes hours, so it is built to be stopped and resumed:

* every description is appended to the output JSONL as soon as it arrives, one line per write,
  flushed and fsynced by the only writer (the event loop's thread): a kill loses at most the
  requests in flight, never a written line;
* a re-run reads that file, repairs a torn last line (truncates it, with a warning) and skips the
  images already described for the task, so nothing is described twice;
* failures (missing image, HTTP error after the retries, time-out, empty, refused, malformed or
  oversized reply: longer than MAX_CHARS_PER_TOKEN characters per requested token) are appended to ``<out>.failures.jsonl`` with their reason and simply retried by the next run.

Transport errors (429, 5xx, time-outs, dropped connections) are retried here with exponential back-off
and jitter (the client's own retries are off, so one policy applies); other 4xx are not retried, and
401/403/404 (wrong key, model or URL) stop the run, as do ``max_consecutive_failures`` failed images
in a row (server down or unable to take images): fixing the set-up beats logging 100k failures.
"""
from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from pyiqa.data.image_io import decode_image
from pyiqa.data.meta_info import meta_columns, read_meta_info
from pyiqa.data.prepare.user_files import check_names
from pyiqa.utils.outputs import refuse_writing_over_inputs
from pyiqa.utils.errors import ConfigError, DataError
from train_clip.corpus.jsonl_log import JsonlLog
from train_clip.corpus.levels import mos_levels
from train_clip.corpus.prompts import DEFAULT_PROMPTS, TASKS, PromptSet, load_prompts

logger = logging.getLogger(__name__)

# Openings of a reply that declines the task instead of describing the image (compared lower-case, with
# typographic apostrophes made straight). Kept short: a description never starts like this.
REFUSAL_OPENINGS = ("i'm sorry", "i am sorry", "sorry,", "i cannot", "i can't", "i can not",
                    "i'm unable", "i am unable", "i'm not able", "i am not able", "as an ai")
MAX_BACKOFF_S = 60.0
# A token is about 4 characters of English and rarely more than 16, so a reply longer than this many
# characters per requested token did not honour max_tokens (a server bug or a runaway generation): it
# is a failure, retried, never stored.
MAX_CHARS_PER_TOKEN = 16
# Sane ranges of the numeric settings: (lowest, highest, what the value is). The caps are far above any
# real use; beyond them a value is a typo (10**15 tokens, a billion connections) that would only fail later.
BOUNDS: Dict[str, Tuple[float, float, str]] = {
    "concurrency": (1, 256, "requests in flight"),
    "retries": (0, 100, "retries per request"),
    "timeout": (1e-3, 24 * 3600.0, "seconds per request"),
    "backoff": (0.0, MAX_BACKOFF_S, "first back-off in seconds"),
    "max_tokens": (1, 32768, "output tokens per description"),
    "temperature": (0.0, 2.0, "sampling temperature, as the OpenAI API allows"),
    "max_side": (16, 8192, "longest image side sent, in pixels"),
    "jpeg_quality": (1, 95, "JPEG quality, as Pillow recommends: above 95 only grows the file"),
    "max_consecutive_failures": (0, float("inf"), "failed images in a row before stopping; 0: never stop"),
    "limit": (1, float("inf"), "images described this run; leave the flag out for all"),
}
_ABORT_STATUS = {401: "the API key was refused", 403: "access was denied",
                 404: "the model or URL does not exist"}


@dataclass
class DescribeSettings:
    """Everything one run needs; the CLI fills it from its flags (same names)."""

    meta: Path
    root: Path
    task: str
    mos_range: Tuple[float, float]
    endpoint: str
    model: str
    out: Path
    lower_better: bool = False
    concurrency: int = 8
    prompts: Path = DEFAULT_PROMPTS
    image_column: Optional[str] = None
    mos_column: Optional[str] = None
    facts_columns: Sequence[str] = ()
    max_side: int = 512
    jpeg_quality: int = 90
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    retries: int = 5
    backoff: float = 1.0
    max_tokens: int = 200
    temperature: float = 0.2
    max_consecutive_failures: int = 20
    limit: Optional[int] = None
    progress: bool = True
    allow_absolute: bool = False


@dataclass(frozen=True)
class Job:
    """One image to describe: its name as in the meta CSV, MOS, level word and dataset facts."""

    image: str
    mos: float
    level: str
    facts: Dict[str, str] = field(default_factory=dict)


@dataclass
class RunSummary:
    """What a run did; ``failures`` counts this run's failed images by kind."""

    images: int = 0
    already_done: int = 0
    todo: int = 0
    described: int = 0
    failures: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    interrupted: bool = False


class Failure(Exception):
    """An image that got no description this run; ``kind`` groups the summary, ``reason`` explains."""

    def __init__(self, kind: str, reason: str, attempts: int = 0) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.attempts = kind, reason, attempts


def failures_path(out: Path) -> Path:
    """``<out>.failures.jsonl`` beside the descriptions file."""
    return Path(str(out) + ".failures.jsonl")


# ---------------------------------------------------------------------------------------------- jobs
def load_jobs(s: DescribeSettings) -> List[Job]:
    """The meta CSV's images with their levels, checked before any request is sent.

    Raises:
        DataError: meta CSV missing/malformed or lacking a named column, ``root`` not a folder, or none
            of the listed images under ``root`` (a wrong ``--root``).
        ConfigError: an unknown task or a bad MOS range.
    """
    if s.task not in TASKS:
        raise ConfigError(f"Unknown task '{s.task}'; choose one of {list(TASKS)}")
    # names are checked below, where --allow-absolute-paths applies
    table = read_meta_info(s.meta, s.image_column, s.mos_column, check_names=False)
    name_col, mos_col = meta_columns(table, s.meta, s.image_column, s.mos_column)
    for col in s.facts_columns:
        if col not in table.columns:
            raise DataError(f"Meta info CSV '{s.meta}' has no column '{col}' (--facts-column); its "
                            f"columns: {list(table.columns)}")
    if not Path(s.root).is_dir():
        raise DataError(f"Image folder '{s.root}' (--root) does not exist or is not a folder")
    # an image outside --root (../../x.jpg, /etc/passwd) would be read and sent to the server
    check_names(table[name_col].astype(str), [f"line {i + 2}" for i in range(len(table))],
                f"Meta info CSV '{s.meta}' column '{name_col}'", s.allow_absolute, "--allow-absolute-paths")
    dup = table[name_col].duplicated()
    if dup.any():
        logger.warning("Meta info CSV '%s' lists %d image(s) more than once (e.g. '%s'); each is described "
                       "once, with the MOS of its first row", s.meta, int(dup.sum()),
                       table[name_col][dup].iloc[0])
        table = table[~dup]
    levels = mos_levels(table[mos_col].tolist(), s.mos_range, s.lower_better)
    facts = table[list(s.facts_columns)].astype(str).to_dict("records")
    jobs = [Job(image=name, mos=float(mos), level=level, facts=fact)
            for name, mos, (_, level), fact in zip(table[name_col], table[mos_col], levels, facts)]
    missing = sum(not (Path(s.root) / j.image).is_file() for j in jobs)
    if missing == len(jobs):
        raise DataError(f"None of the {len(jobs)} images of '{s.meta}' exists under '{s.root}' (e.g. "
                        f"'{Path(s.root) / jobs[0].image}'); --root must be the folder the meta CSV's "
                        f"image column ('{name_col}') is relative to")
    if missing:
        logger.warning("%d of %d images are missing under '%s'; they are logged as failures", missing,
                       len(jobs), s.root)
    return jobs


def encode_image(path: Path, max_side: int, quality: int = 90) -> str:
    """The image as a ``data:image/jpeg;base64,...`` URL, its longer side at most ``max_side``."""
    img = decode_image(path, max_side=max_side)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_request(s: DescribeSettings, system: str, user: str, data_url: str) -> Dict[str, Any]:
    """Keyword arguments of ``chat.completions.create`` for one image."""
    return {"model": s.model, "max_tokens": s.max_tokens, "temperature": s.temperature, "messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "text", "text": user},
                                     {"type": "image_url", "image_url": {"url": data_url}}]}]}


# ------------------------------------------------------------------------------------------ replies
def reply_cap(max_tokens: int) -> int:
    """The most characters a reply to a request for ``max_tokens`` tokens may hold."""
    return MAX_CHARS_PER_TOKEN * max_tokens


class OversizedReply(ValueError):
    """The reply is far longer than the request's ``max_tokens`` allows (retried like a transport error)."""


def check_reply_length(resp: Any, max_tokens: int) -> None:
    """OversizedReply when the first choice's content exceeds :func:`reply_cap`."""
    choices = getattr(resp, "choices", None)
    if isinstance(choices, list) and choices:
        content = getattr(getattr(choices[0], "message", None), "content", None)
        if isinstance(content, str) and len(content) > reply_cap(max_tokens):
            raise OversizedReply(f"reply of {len(content)} characters, over the cap of {reply_cap(max_tokens)} "
                                 f"({MAX_CHARS_PER_TOKEN} per requested token, --max-tokens {max_tokens})")


def parse_reply(resp: Any) -> Tuple[str, Optional[str]]:
    """``(text, finish_reason)`` of a chat completion; Failure when it is no usable description."""
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise Failure("malformed", "malformed reply: no choices")
    choice = choices[0]
    finish = getattr(choice, "finish_reason", None)
    content = getattr(getattr(choice, "message", None), "content", None)
    if finish == "content_filter":
        raise Failure("refusal", "refused: finish_reason content_filter")
    if content is not None and not isinstance(content, str):
        raise Failure("malformed", f"malformed reply: content is {type(content).__name__}, not text")
    text = (content or "").strip()
    if not text:
        raise Failure("empty", f"empty reply (finish_reason {finish})")
    opening = text.lower().replace("\u2019", "'")
    if opening.startswith(REFUSAL_OPENINGS):
        raise Failure("refusal", f"refused: {text[:80]!r}")
    return text, finish


def _retry_after(exc: Exception) -> Optional[float]:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            return float(headers.get(name)) * scale
        except (TypeError, ValueError):
            continue
    return None


DEADLINE_MARGIN_S = 10.0  # added to twice --timeout: what a slow but live server may need beyond reads


def reply_deadline(s: "DescribeSettings") -> float:
    """Seconds a whole request may take: twice ``--timeout`` (which bounds each read) plus a margin."""
    return 2 * s.timeout + DEADLINE_MARGIN_S


def _classify(exc: Exception) -> Tuple[str, bool, str]:
    """``(kind, retry?, reason)`` of an exception raised by the request."""
    import openai
    if isinstance(exc, OversizedReply):
        return "oversized", True, str(exc)
    if isinstance(exc, asyncio.TimeoutError):  # reply_deadline passed
        return "timeout", True, (f"no complete reply within the request deadline (2 x --timeout + "
                                 f"{DEADLINE_MARGIN_S:g} s)")
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True, "timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "connection", True, f"connection error ({exc.__cause__ or exc})"
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        retry = code in (408, 429) or code >= 500
        kind = "rate_limited" if code == 429 else "server_error" if code >= 500 else "http_error"
        return kind, retry, f"HTTP {code}: {str(exc.message)[:200]}"
    if isinstance(exc, (openai.APIResponseValidationError, ValueError)):  # incl. JSONDecodeError
        return "malformed", False, f"malformed reply: {str(exc)[:200]}"
    raise exc


async def request_with_retries(client: Any, request: Dict[str, Any], s: DescribeSettings) -> Tuple[Any, int]:
    """``(completion, attempts)``; Failure once the retries are spent or the error is not transient.

    Raises:
        ConfigError: 401/403/404, which no retry or other image will fix.
    """
    for attempt in range(1, s.retries + 2):
        try:
            # the client's timeout bounds each read, not the whole reply: a server that trickles a
            # byte at a time would never end, so the whole request gets a deadline too
            resp = await asyncio.wait_for(client.chat.completions.create(**request), reply_deadline(s))
            check_reply_length(resp, request["max_tokens"])
            return resp, attempt
        except Exception as exc:  # classified below; anything unexpected is re-raised by _classify
            kind, retry, reason = _classify(exc)
            code = getattr(exc, "status_code", None)
            if code in _ABORT_STATUS:
                raise ConfigError(f"The endpoint {s.endpoint} answered {reason} ({_ABORT_STATUS[code]}): "
                                  f"check --endpoint, --model '{s.model}' and the key in "
                                  f"${s.api_key_env}") from exc
            if not retry or attempt > s.retries:
                tries = f" after {attempt} attempt(s)" if retry else ""
                raise Failure(kind, reason + tries, attempt) from exc
            delay = min(MAX_BACKOFF_S, s.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            hint = _retry_after(exc)
            if hint is not None:
                delay = max(delay, min(hint, MAX_BACKOFF_S))
            logger.debug("%s; retry %d/%d in %.2f s", reason, attempt, s.retries, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def describe_one(client: Any, job: Job, s: DescribeSettings, prompts: PromptSet) -> Dict[str, Any]:
    """The description record of one image (see the module's output format); Failure otherwise."""
    path = Path(s.root) / job.image
    try:
        data_url = await asyncio.to_thread(encode_image, path, s.max_side, s.jpeg_quality)
    except DataError as exc:
        kind = "missing_image" if not path.is_file() else "unreadable_image"
        raise Failure(kind, str(exc)) from exc
    system, user = prompts.render(s.task, job.level, job.facts)
    resp, attempts = await request_with_retries(client, build_request(s, system, user, data_url), s)
    try:
        text, finish = parse_reply(resp)
    except Failure as exc:
        exc.attempts = attempts
        raise
    record = {"image": job.image, "task": s.task, "mos": job.mos, "level": job.level,
              "prompt_version": prompts.version, "model": s.model, "text": text,
              "finish_reason": finish, "attempts": attempts}
    if job.facts:
        record["facts"] = job.facts
    return record


# ---------------------------------------------------------------------------------------------- run
def check_settings(s: DescribeSettings) -> None:
    """ConfigError naming the flag, its value and its range for a numeric setting out of bounds (see
    :data:`BOUNDS`; ``--limit`` None is no limit, ``--max-consecutive-failures`` 0 never stops)."""
    for name, (lo, hi, why) in BOUNDS.items():
        value = getattr(s, name)
        if value is None and name == "limit":
            continue
        if not (lo <= value <= hi):  # also refuses NaN
            flag = "--" + name.replace("_", "-")
            shown = str(value) if len(str(value)) <= 24 else f"{str(value)[:12]}...({len(str(value))} digits)"
            span = f">= {lo:g}" if hi == float("inf") else f"from {lo:g} to {hi:g}"
            raise ConfigError(f"{flag} {shown} is out of range: expected {span} ({why})")


def run(s: DescribeSettings) -> RunSummary:
    """Describe every image of ``s.meta`` not yet in ``s.out``; Ctrl-C stops cleanly (summary.interrupted).

    Raises:
        DataError / ConfigError: bad inputs (before any request), or a set-up error met mid-run.
    """
    check_settings(s)
    prompts = load_prompts(s.prompts)
    jobs = load_jobs(s)
    refuse_writing_over_inputs(
        [("--out", s.out), ("the failures log", failures_path(s.out))],
        [("--meta", s.meta), ("--prompts", s.prompts)]
        + [(f"image '{j.image}'", Path(s.root) / j.image) for j in jobs])
    _require_openai()
    out, fail_log = JsonlLog(s.out), JsonlLog(failures_path(s.out))
    summary = RunSummary(images=len(jobs))
    try:
        done = _done_images(out.open(), s, prompts)
        fail_log.open()
        todo = [j for j in jobs if j.image not in done]
        summary.already_done = len(jobs) - len(todo)
        todo = todo[: s.limit] if s.limit is not None else todo
        summary.todo = len(todo)
        logger.info("%d images in '%s': %d already described in '%s', %d to do (task %s, model %s, "
                    "prompts %s)", len(jobs), s.meta, summary.already_done, s.out, len(todo), s.task,
                    s.model, prompts.version)
        start = time.perf_counter()
        try:
            if todo:
                asyncio.run(_describe_all(todo, s, prompts, out, fail_log, summary))
        except KeyboardInterrupt:
            summary.interrupted = True
            logger.warning("Interrupted: what was written is kept; run the same command again to go on")
        finally:
            summary.seconds = time.perf_counter() - start
            _log_summary(summary, s)
    finally:
        out.close()
        fail_log.close()
    return summary


async def _describe_all(todo: List[Job], s: DescribeSettings, prompts: PromptSet, out: JsonlLog,
                        fail_log: JsonlLog, summary: RunSummary) -> None:
    """``s.concurrency`` workers share one job iterator, so exactly that many requests are in flight."""
    from tqdm import tqdm
    client = _make_client(s)
    jobs = iter(todo)
    streak = [0]  # failed images in a row (a success resets it)
    bar = tqdm(total=len(todo), unit="img", desc=f"describe ({s.task})", disable=not s.progress,
               dynamic_ncols=True, smoothing=0.05)

    async def worker() -> None:
        for job in jobs:
            try:
                out.append(await describe_one(client, job, s, prompts))
                summary.described += 1
                streak[0] = 0
            except Failure as exc:
                fail_log.append({"image": job.image, "task": s.task, "reason": exc.reason, "kind": exc.kind,
                                 "attempts": exc.attempts, "model": s.model,
                                 "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                summary.failures[exc.kind] += 1
                streak[0] += exc.kind not in ("missing_image", "unreadable_image")
                if 0 < s.max_consecutive_failures <= streak[0]:
                    raise ConfigError(f"{streak[0]} images in a row failed, the last with '{exc.reason}'; is "
                                      f"the server at {s.endpoint} running, serving '{s.model}' with image "
                                      "input, and is --timeout long enough? Work done so far is kept; "
                                      "re-run the same command to go on") from exc
            bar.update()
            bar.set_postfix(failed=sum(summary.failures.values()), refresh=False)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(s.concurrency, len(todo)))]
    try:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            task.result()  # re-raise a worker's fatal error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        bar.close()
        await client.close()


def _require_openai() -> None:
    try:
        import openai  # noqa: F401  (imported here so the run's clock does not include it)
    except ImportError as exc:
        raise ConfigError("The 'openai' client is needed to talk to the endpoint: "
                          "pip install 'pyiqa-uniqa[data]' (or pip install openai)") from exc


def _make_client(s: DescribeSettings) -> Any:
    import openai
    key = os.environ.get(s.api_key_env)
    if not key:
        logger.info("$%s is not set: sending a placeholder API key (fine for local servers)", s.api_key_env)
    return openai.AsyncOpenAI(base_url=s.endpoint, api_key=key or "EMPTY", max_retries=0, timeout=s.timeout)


def _done_images(out: JsonlLog, s: DescribeSettings, prompts: PromptSet) -> Set[str]:
    """Images of this task already in the output; notes those from another model or prompt version."""
    done, other = set(), 0
    for r in out.records():
        if r.get("task") == s.task:
            done.add(r.get("image"))
            other += (r.get("model"), r.get("prompt_version")) != (s.model, prompts.version)
    if other:
        logger.info("%d descriptions in '%s' come from another model or prompt version; they are kept "
                    "and not redone (write to a new --out to redo them)", other, s.out)
    return done


def _log_summary(summary: RunSummary, s: DescribeSettings) -> None:
    rate = summary.described / summary.seconds if summary.seconds > 0 else 0.0
    logger.info("Described %d of %d images this run in %.1f s (%.2f/s); %d were already done",
                summary.described, summary.todo, summary.seconds, rate, summary.already_done)
    failed = sum(summary.failures.values())
    if failed:
        kinds = ", ".join(f"{k} {n}" for k, n in summary.failures.most_common())
        logger.warning("%d images failed (%s); reasons in '%s'; a re-run retries them", failed, kinds,
                       failures_path(s.out))
