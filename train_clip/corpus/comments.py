"""Reading AVA's human comments in the forms users have them, and cleaning them before purification.

Input forms (``--format``; ``auto`` picks by the path):

* ``ava-dir`` (a folder): the AVA-Comments crawl of Zhou et al., "Joint Image and Text Representation
  for Aesthetics Analysis" (ACM MM 2016): one text file per image, ``<image id>.txt``, one comment per
  line (what the crawl's published readers and the later AVA-Scraper, which copies its layout, split
  on). Other files in the folder are ignored.
* ``ava-lines`` (a ``.txt`` file): ``AVA_Comments_Full.txt`` of Ghosal et al. (ICCVW 2019, the raw
  comments behind AVA-Captions): one line per image, fields separated by ``#``: field 0 a running
  number (ignored), field 1 the image id, fields 2.. the comments. A ``#`` typed inside a comment splits
  it: a limitation of the published format.
* ``jsonl``: one object per line, ``{"image": ID, "comments": [..]}`` or one comment per line
  ``{"image": ID, "comment": ".."}`` (keys configurable); lines of the same image are merged.
* ``csv``: a header row; one image-id column and one or more comment columns (names configurable);
  rows of the same image are merged.

Crawl files are decoded as UTF-8, falling back to Latin-1 per file (the crawl mixes both; its
published readers use either). Image ids become the image names of the descriptions file through a
template (``{id}.jpg``: AVA's ``img_name`` column); an id that already is a described name is kept.
A source without a single comment, and a line (or crawl file) longer than :data:`MAX_IMAGE_CHARS`, are
errors naming the file (and line): there is nothing to purify, or it is not a comment file.
"""
from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container, Dict, Iterator, List, Optional, Sequence, Tuple

from pyiqa.data.prepare.user_files import MAX_TEXT_BYTES, name_problem, read_bytes
from pyiqa.utils.errors import ConfigError, DataError
from pyiqa.utils.registry import closest

from .jsonl_log import MAX_LINE_BYTES

logger = logging.getLogger(__name__)

FORMATS = ("auto", "ava-dir", "ava-lines", "jsonl", "csv")
# One image's comments (a line of AVA_Comments_Full.txt or of a JSONL, a crawl file): AVA's most
# commented images hold well under 1 MB; far beyond that it is not a comment file (the cap of one JSONL
# record, as for the tools' own JSONL files).
MAX_IMAGE_CHARS = MAX_LINE_BYTES
# Published separators: a line per comment in the crawl folder, '#' in AVA_Comments_Full.txt.
DEFAULT_DELIMITERS = {"ava-dir": "\n", "ava-lines": "#"}
DEFAULT_IMAGE_TEMPLATE = "{id}.jpg"
FALLBACK_ENCODING = "latin-1"  # decodes any byte: the crawl holds some non-UTF-8 files
URL_POLICIES = ("strip", "drop")
# Why a comment is dropped by cleaning, in the order the checks run.
DROP_REASONS = ("empty", "url", "non_text", "duplicate")

TAG = re.compile(r"</?\s*[A-Za-z][^<>]*>")                   # <br>, <br />, <a href=..>, </i>
EDITED = re.compile(r"Message edited by author\b.*$", re.IGNORECASE | re.DOTALL)  # dpchallenge stamp
# Scheme or www. links in any case; bare domains only with a lower-case top-level domain, so that a
# missing space ("nice shot.Info") is not taken for a link.
URL = re.compile(r"(?i:\b(?:https?|ftp)://|\bwww\.)\S+"
                 r"|\b[\w.-]+\.(?:com|net|org|edu|gov|info|io|ly|co\.uk)(?:/\S*)?\b")
SPACE = re.compile(r"\s+")
C1 = re.compile("[\x80-\x9f]")  # C1 controls: cp1252 bytes decoded as Latin-1 somewhere upstream


@dataclass
class CommentSource:
    """Where the comments are and how to read them (the script's input flags)."""
    path: Path
    fmt: str = "auto"
    delimiter: Optional[str] = None          # None: the format's published one
    encoding: str = "utf-8"
    image_key: str = "image"                 # jsonl
    comment_key: Optional[str] = None        # jsonl; None: "comments", else "comment"
    id_column: str = "image"                 # csv
    comment_columns: Sequence[str] = ("comment",)  # csv


@dataclass
class Cleaned:
    """One image's comments after cleaning: the survivors in input order and drop counts per reason."""
    comments: List[str]
    dropped: Counter = field(default_factory=Counter)


def resolve_format(source: CommentSource) -> str:
    """The concrete format of ``source`` (``auto`` picks by the path), checked against the path."""
    path = source.path
    if not path.exists():
        raise DataError(f"Comments path '{path}' does not exist (expected a folder of <image id>.txt "
                        "files, AVA_Comments_Full.txt, a .jsonl or a .csv file).")
    if source.delimiter is not None and not source.delimiter:
        raise ConfigError("--delimiter '' is empty; give the text between two comments ('#', '\\n', "
                          "'\\t', ...) or leave the flag out for the format's published one.")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"Comments file '{path}' is empty (0 bytes); there is nothing to purify.")
    fmt = source.fmt
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown comments format '{fmt}'; valid: {FORMATS}.{closest(fmt, FORMATS)}")
    if fmt == "auto":
        if path.is_dir():
            return "ava-dir"
        by_suffix = {".txt": "ava-lines", ".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}
        if path.suffix.lower() not in by_suffix:
            raise ConfigError(f"Cannot tell the format of '{path}' from its suffix; pass --format "
                              f"({', '.join(FORMATS[1:])}).")
        return by_suffix[path.suffix.lower()]
    if (fmt == "ava-dir") != path.is_dir():
        raise DataError(f"--format {fmt} expects {'a folder' if fmt == 'ava-dir' else 'a file'}, "
                        f"but '{path}' is {'a folder' if path.is_dir() else 'a file'}.")
    return fmt


def read_comments(source: CommentSource) -> Iterator[Tuple[str, List[str]]]:
    """(image id, raw comments) per image, in a deterministic order: crawl files by id (numeric ids
    numerically), the other forms in order of first appearance."""
    fmt = resolve_format(source)
    if fmt == "ava-dir":
        items = _read_ava_dir(source)
    elif fmt == "ava-lines":
        items = _read_ava_lines(source)
    elif fmt == "jsonl":
        items = iter(_read_jsonl(source).items())
    else:
        items = iter(_read_csv(source).items())
    images = comments = 0
    for image_id, raw in items:
        images += 1
        comments += len(raw)
        yield image_id, raw
    if not comments:
        raise DataError(f"Comments '{source.path}' hold no comments ({images} image(s) read as {fmt}); "
                        f"there is nothing to purify. Is it the right file, and --format right?")


def _lines(text: str) -> List[str]:
    """Split at \\n (and \\r\\n) only: str.splitlines also splits at U+0085 and U+2028, which occur
    inside AVA comments (cp1252 punctuation read as Latin-1) and inside JSON strings."""
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines  # a final newline ends a line, it adds none


def _split(text: str, delimiter: str) -> List[str]:
    return _lines(text) if delimiter == "\n" else text.split(delimiter)


def _read_bytes(path: Path, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The file's bytes; DataError for a FIFO or device (never ends) or a file over the size cap."""
    return read_bytes(path, "Comments file", max_bytes)


def _check_line(path: Path, number: int, line: str) -> str:
    """``line``, or a DataError when it is longer than one image's comments can be."""
    if len(line) > MAX_IMAGE_CHARS:
        raise DataError(f"{path}:{number}: the line holds {len(line):,} characters, over the cap of "
                        f"{MAX_IMAGE_CHARS:,} for one image's comments; is it the right file?")
    return line


def _decode(data: bytes, encoding: str) -> Tuple[str, bool]:
    """(text, whether the Latin-1 fallback was needed)."""
    try:
        return data.decode(encoding), False
    except UnicodeDecodeError:
        return data.decode(FALLBACK_ENCODING), True
    except LookupError as err:
        raise ConfigError(f"Unknown --encoding '{encoding}': {err}") from err


def _id_order(name: str) -> Tuple[int, int, str]:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _read_ava_dir(source: CommentSource) -> Iterator[Tuple[str, List[str]]]:
    files = sorted((p for p in source.path.iterdir() if p.suffix == ".txt" and p.is_file()),
                   key=lambda p: _id_order(p.stem))
    if not files:
        raise DataError(f"Comments folder '{source.path}' holds no <image id>.txt files.")
    delimiter = source.delimiter or DEFAULT_DELIMITERS["ava-dir"]
    fallbacks = 0
    for path in files:
        text, fell_back = _decode(_read_bytes(path, MAX_IMAGE_CHARS), source.encoding)
        fallbacks += fell_back
        yield path.stem, _split(text, delimiter)
    if fallbacks:
        logger.info("%d of %d comment files were not %s; read them as %s", fallbacks, len(files),
                    source.encoding, FALLBACK_ENCODING)


def _read_ava_lines(source: CommentSource) -> Iterator[Tuple[str, List[str]]]:
    delimiter = source.delimiter or DEFAULT_DELIMITERS["ava-lines"]
    text, fell_back = _decode(_read_bytes(source.path), source.encoding)
    if fell_back:
        logger.info("'%s' is not %s; read it as %s", source.path, source.encoding, FALLBACK_ENCODING)
    merged: Dict[str, List[str]] = {}
    for n, line in enumerate(_lines(text), 1):
        if not _check_line(source.path, n, line).strip():
            continue
        fields = line.split(delimiter)
        if len(fields) < 2 or not fields[1].strip():
            raise DataError(f"{source.path}:{n}: expected '<number>{delimiter}<image id>{delimiter}"
                            f"<comment>{delimiter}...' (AVA_Comments_Full.txt layout), got "
                            f"{line[:80]!r}. Is --delimiter right?")
        merged.setdefault(fields[1].strip(), []).extend(fields[2:])
    return iter(merged.items())


def _read_jsonl(source: CommentSource) -> Dict[str, List[str]]:
    merged: Dict[str, List[str]] = {}
    text, _ = _decode(_read_bytes(source.path), source.encoding)
    for n, line in enumerate(_lines(text), 1):
        if not _check_line(source.path, n, line).strip():
            continue
        where = f"{source.path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: not a JSON object ({err.msg}).") from err
        if not isinstance(obj, dict) or source.image_key not in obj:
            keys = list(obj) if isinstance(obj, dict) else []
            raise DataError(f"{where}: expected an object with the image key '{source.image_key}' "
                            f"(--image-key); keys found: {keys}.{closest(source.image_key, keys)}")
        key = source.comment_key or next((k for k in ("comments", "comment") if k in obj), None)
        if key is None or key not in obj:
            raise DataError(f"{where}: no comment key '{key or 'comments'}' (--comment-key); keys "
                            f"found: {list(obj)}.{closest(key or 'comments', obj)}")
        value = obj[key]
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise DataError(f"{where}: '{key}' must be a string or a list of strings, got "
                            f"{type(value).__name__}.")
        merged.setdefault(str(obj[source.image_key]).strip(), []).extend(values)
    return merged


def _read_csv(source: CommentSource) -> Dict[str, List[str]]:
    merged: Dict[str, List[str]] = {}
    text, _ = _decode(_read_bytes(source.path), source.encoding)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))  # quoted newlines kept
    header = reader.fieldnames or []
    for column in [source.id_column, *source.comment_columns]:
        if column not in header:
            raise DataError(f"{source.path}: no column '{column}' (--id-column / --comment-column); "
                            f"columns: {header}.{closest(column, header)}")
    try:
        for row in reader:
            comments = [row[c] or "" for c in source.comment_columns]
            merged.setdefault((row[source.id_column] or "").strip(), []).extend(comments)
    except csv.Error as err:  # a cell over the csv module's field limit (128 KiB), a NUL byte
        raise DataError(f"{source.path}:{reader.line_num}: cannot be read as CSV ({err}).") from err
    merged.pop("", None)
    return merged


def _cp1252(match: "re.Match[str]") -> str:
    return bytes([ord(match.group())]).decode("cp1252", errors="ignore")


def clean_text(text: str) -> str:
    """Undo the crawl's HTML (entities, tags, dpchallenge's edit stamp) and its cp1252 punctuation read
    as Latin-1 (U+0085 -> an ellipsis, U+0092 -> an apostrophe...), and collapse whitespace."""
    text = C1.sub(_cp1252, html.unescape(text))
    text = TAG.sub(" ", text)
    text = EDITED.sub("", text)
    return SPACE.sub(" ", text).strip()


def _has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def clean_comment(text: str, urls: str = "strip") -> Tuple[str, Optional[str]]:
    """(cleaned text, drop reason or None) for one comment; duplicates are judged by the caller.

    ``urls``: ``strip`` removes URLs and keeps the words around them (a comment that was only a link is
    dropped as ``url``); ``drop`` drops every comment that holds a URL.
    """
    text = clean_text(text)
    if not text:
        return text, "empty"
    if URL.search(text):
        if urls == "drop":
            return text, "url"
        text = SPACE.sub(" ", URL.sub(" ", text)).strip()
        if not _has_letters(text):
            return text, "url"
    if not _has_letters(text):  # only digits, symbols, emoji, punctuation
        return text, "non_text"
    return text, None


def duplicate_key(text: str) -> str:
    """Comments equal up to case and whitespace count as one."""
    return SPACE.sub(" ", text.casefold()).strip()


def clean_comments(raw: Sequence[str], urls: str = "strip") -> Cleaned:
    """Clean one image's comments: first occurrence of each kept, the rest counted per reason."""
    if urls not in URL_POLICIES:
        raise ConfigError(f"Unknown URL policy '{urls}'; valid: {URL_POLICIES}.")
    out = Cleaned([])
    seen = set()
    for comment in raw:
        text, reason = clean_comment(comment, urls)
        if reason is None:
            key = duplicate_key(text)
            if key in seen:
                reason = "duplicate"
            seen.add(key)
        if reason is None:
            out.comments.append(text)
        else:
            out.dropped[reason] += 1
    return out


def image_name(image_id: str, template: str, described: Container[str]) -> str:
    """The descriptions-file name of ``image_id``: itself when described, else ``template`` filled.

    Raises:
        DataError: the name would be absolute or climb out of the image folder (``../../x``): the
            corpus built from it would point outside the dataset.
    """
    name = image_id if image_id in described else template.format(id=image_id)
    why = name_problem(name)
    if why:
        raise DataError(f"Comments for image id '{image_id[:120]}': image name '{name[:120]}' {why}")
    return name


def check_template(template: str) -> None:
    """Refuse an image template that does not place the id exactly once."""
    try:
        filled = template.format(id="0")
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(f"--image-template '{template}' is not a valid template ({err}); use "
                          "'{id}' for the image id, e.g. '{id}.jpg' or 'images/{id}.jpg'.") from err
    if template.count("{id}") != 1 or filled == template:
        raise ConfigError(f"--image-template '{template}' must contain '{{id}}' exactly once, e.g. "
                          "'{id}.jpg'.")
