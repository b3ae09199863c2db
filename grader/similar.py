"""`grade.py similar`: pairs of submissions that share code or written answers, ranked for a
person to judge (DIR/similar.csv and DIR/similar.html).

What is compared:

- Code: every .py file of a submission (two_layer_net.py and the student's own modules), read
  with Python's tokenizer. Comments, docstrings, layout and the student's own names do not
  count: each name becomes `V` unless it is a keyword, a builtin or an attribute (`torch.exp`,
  `.sum`), which a renaming leaves as they are; numbers are compared by value.
- The kit's starter code is removed first: every token that lies in a run of STARTER_K tokens
  also found in the release's stubs (grader.release.strip_solutions of the kit's module) or in
  the helpers the notebook imports is the kit's, and no fingerprint may cover one.
- Fingerprints: hashes of K-token runs, winnowed (copydetect's `winnow`, Schleimer, Wilkerson
  and Aiken 2003: any shared run of K + WINDOW - 1 tokens leaves at least one shared
  fingerprint), so reordered functions, inserted dead code and partial copies still match.
- A fingerprint shared by more than `common` submissions of the class is conventional code (the
  assignment's correct code is short and convergent) and is not evidence, like MOSS's `-m`.
- Written answers: the notebook's answer cells (grader.answers.answers_of) as prose: words
  lowercased, stop words dropped, crude stems; pairs of neighbouring words are the
  fingerprints, with the question's own words and the placeholder removed and the same cut.
- Archive folders (`--archive`: past terms, public solutions) are compared with the class,
  never with each other.

An inverted index (fingerprint -> submissions) finds the pairs that share anything, so the cost
grows with the number of files, not with its square. The numbers rank pairs for a person to
look at; sharing code is not proof of copying, and not sharing is not proof of the opposite.
"""
import builtins
import csv
import io
import itertools
import keyword
import math
import os
import re
import sys
import unicodedata
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from copydetect.utils import get_copied_slices, winnow

from grader import KIT_ROOT
from grader.submission import MODULE, NOTEBOOK

K = 12  # tokens per fingerprinted run
WINDOW = 6  # winnowing window: every shared run of K + WINDOW - 1 = 17 tokens is seen
STARTER_K = 8  # a run of this many tokens found in the starter code marks its tokens as starter
ANSWER_K = 2  # words per answer fingerprint
MIN_COMMON = 3  # a passage shared by more than max(MIN_COMMON, COMMON_FRACTION * class) is common
COMMON_FRACTION = 0.05
CODE_FLOOR = 12  # fingerprints: a submission with fewer is scored as if it had this many
ANSWER_FLOOR = 12  # answer fingerprints, likewise
FLAG_CODE = 0.4  # a pair is "worth a look" from this code similarity,
FLAG_RUN = 80  # or from a shared run of this many tokens (about eight lines of code),
FLAG_ANSWER = 0.4  # or from this answer similarity
SHOWN = 60  # side-by-side views in the page
CSV_NAME, HTML_NAME = "similar.csv", "similar.html"
STARTER_SUPPORT = ["helpers.py", "helpers_lib/*.py"]  # kit modules a student folder may carry

_BUILTINS = frozenset(dir(builtins))
_SEPARATOR = "\x00file"  # between two files: no fingerprint spans it
_TOKEN = re.compile(r"""
  (?P<space>[ \t\f]+|\\\r?\n)
| (?P<comment>\#[^\r\n]*)
| (?P<newline>\r?\n|\r)
| (?P<string>[rRbBuUfF]{0,2}(?:\'\'\'(?:\\.|[^\\])*?\'\'\'|\"\"\"(?:\\.|[^\\])*?\"\"\"
                            |\'(?:\\.|[^\\\'\r\n])*\'|\"(?:\\.|[^\\\"\r\n])*\"))
| (?P<number>0[xXoObB][0-9a-fA-F_]+|(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9_]+)?[jJ]?)
| (?P<name>[^\W\d]\w*)
| (?P<op>\*\*=?|//=?|>>=?|<<=?|->|:=|\.\.\.|[-+*/%@&|^=<>!]=|[-+*/%@&|^~<>=.,:;()\[\]{}])
| (?P<other>\S)
""", re.VERBOSE | re.DOTALL)
_IDENTIFIER_STRING = re.compile(r"""[rbuRBU]?(['"])([A-Za-z_][A-Za-z0-9_]{0,15})\1""")
_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset("""a about above after again against all also am an and any are as at be
because been before being below between both but by can could did do does doing down during each
few for from further had has have having he her here hers him his how i if in into is it its
itself just me more most my no nor not now of off on once only or other our out over own same she
should so some such than that the their them then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you
your yours""".split())


@dataclass(eq=False)  # documents are told apart by name; their arrays do not compare
class Document:
    """One submission as compared: its code's tokens and fingerprints, its answers' words."""
    name: str
    source: str  # where it came from, as the instructor passed it
    archive: str = None  # the archive's label; None for the class
    identity: dict = field(default_factory=dict)
    error: str = None
    files: list = field(default_factory=list)  # [(file name, text)] of the code
    token_file: np.ndarray = None  # per token: index into files
    token_line: np.ndarray = None  # per token: 1-based line
    starter: np.ndarray = None  # per token: True where it is the kit's code
    fingerprints: dict = field(default_factory=dict)  # hash -> token positions
    answers: dict = field(default_factory=dict)  # question id -> text
    answer_words: dict = field(default_factory=dict)  # question id -> [(word, start, end)]
    answer_prints: dict = field(default_factory=dict)  # hash -> [(question id, word index)]
    notebook: bytes = None  # until fingerprinted

    @property
    def origin(self):
        """Where it came from, for a person: 'class' or 'archive <label>: <path>'."""
        return "class" if self.archive is None else f"archive {self.archive}: {self.source}"


@dataclass
class Pair:
    """Two documents and what they share (a is the class's when the other is archived)."""
    a: Document
    b: Document
    code: float = 0.0  # shared fingerprints over the smaller side's, 0..1
    answers: float = 0.0
    run_tokens: int = 0  # the longest shared run, in tokens
    run_lines: int = 0  # ... in lines of a
    slices_a: list = field(default_factory=list)  # [(start token, end token)]
    slices_b: list = field(default_factory=list)
    shared_words: dict = field(default_factory=dict)  # question id -> ({word index a}, {b})
    ij: tuple = None  # the documents' places in compare's list

    @property
    def score(self):
        """The ranking key: the stronger of code and answers, a long run counting as code."""
        return max(self.code, self.answers, min(1.0, self.run_tokens / (2 * FLAG_RUN)))

    @property
    def flagged(self):
        return (self.code >= FLAG_CODE or self.run_tokens >= FLAG_RUN
                or self.answers >= FLAG_ANSWER)


@dataclass
class Comparison:
    """The outcome of `compare`: ranked pairs, clusters and what was left out."""
    documents: list
    pairs: list  # ranked, best first
    clusters: list  # [[Document]] of three or more flagged together
    common: int  # the frequency cut used
    unreadable: list  # documents that could not be read
    flag_rule: str = (f"code similarity at least {FLAG_CODE:.0%}, a shared run of at least "
                      f"{FLAG_RUN} tokens, or answer similarity at least {FLAG_ANSWER:.0%}")


# ---- code ---------------------------------------------------------------------------------

def code_tokens(text):
    """[(symbol, line)] of Python source: names but keywords, builtins and attributes become
    V, strings S (short identifier-like ones, dict keys, stay), numbers their value; comments,
    docstrings, layout and `;` are dropped.

    One regular expression instead of Python's tokenize (five times faster, which a class and
    an archive of a thousand files need; tests check that both give the same tokens): source
    that does not tokenize still gives tokens, an unclosed quote counting as an operator.
    """
    out, previous, depth, line, line_start = [], None, 0, 1, True
    for match in _TOKEN.finditer(text):
        kind, string = match.lastgroup, match.group()
        if kind == "space":
            line += string.count("\n")
            continue
        if kind == "newline":
            line += 1
            line_start = line_start or depth == 0
            continue
        if kind == "comment":
            continue
        if kind == "string":
            here = line
            line += string.count("\n")
            if line_start:  # a docstring or a bare string statement
                line_start = False
                continue
            key = _IDENTIFIER_STRING.fullmatch(string)
            out.append((f"'{key.group(2)}'" if key else "S", here))  # params["W1"] == ['W1']
            previous, line_start = string, False
            continue
        if string == ";":
            line_start = depth == 0
            continue
        if kind == "name":
            keep = keyword.iskeyword(string) or string in _BUILTINS or previous == "."
            symbol = string if keep else "V"
        elif kind == "number":
            symbol = _number(string)
        else:
            symbol = string
            if string in "([{":
                depth += 1
            elif string in ")]}":
                depth = max(depth - 1, 0)
        out.append((symbol, line))
        previous, line_start = string, False
    return out


def _number(text):
    try:
        value = complex(text.replace("_", ""))
    except ValueError:
        return text
    return repr(value.real) if value.imag == 0 else repr(value)


def _ids(symbols):
    return np.fromiter((zlib.crc32(s.encode()) for s in symbols), dtype=np.uint64,
                       count=len(symbols))


def run_hashes(ids, k):
    """Hashes (int64, below 2**52 so that a float compares them exactly) of every run of k
    consecutive ids; deterministic from run to run, unlike Python's hash()."""
    n = len(ids) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    h = np.zeros(n, dtype=np.uint64)
    base = np.uint64(1_000_003)
    for j in range(k):
        h = h * base + ids[j:j + n]
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    return (h >> np.uint64(12)).astype(np.int64)


def starter_runs(kit=KIT_ROOT, extra=()):
    """The sorted hashes of every STARTER_K-token run of the kit's starter code: the release's
    stubs of two_layer_net.py, the helpers a notebook imports, and `extra` files (--base)."""
    from grader import kitfiles, release

    texts = []
    with open(os.path.join(kit, MODULE), encoding="utf-8") as f:
        texts.append(release.strip_solutions(f.read())[0])
    for rel in kitfiles.kit_files(STARTER_SUPPORT, kit):
        if rel in kitfiles.RELEASE_SUBSTITUTES:  # the kit's own (its oracle): students lack it
            continue
        with open(os.path.join(kit, rel), encoding="utf-8") as f:
            texts.append(f.read())
    for path in extra:
        with open(path, encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    hashes = [run_hashes(_ids([s for s, _ in code_tokens(t)]), STARTER_K) for t in texts]
    return np.unique(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.int64)


def fingerprint_code(files, starter):
    """(token_file, token_line, starter mask, {hash: [positions]}) of the code `files`
    ([(name, text)]), with no fingerprint over a starter token or across two files."""
    symbols, file_of, line_of = [], [], []
    for index, (_, text) in enumerate(files):
        if symbols:
            symbols.append(_SEPARATOR)
            file_of.append(index)
            line_of.append(0)
        for symbol, line in code_tokens(text):
            symbols.append(symbol)
            file_of.append(index)
            line_of.append(line)
    ids = _ids(symbols)
    is_starter = np.array([s == _SEPARATOR for s in symbols], dtype=bool)
    runs = run_hashes(ids, STARTER_K)
    if len(runs) and len(starter):
        at = np.minimum(np.searchsorted(starter, runs), len(starter) - 1)
        found = (starter[at] == runs).astype(np.int32)
        is_starter |= np.convolve(found, np.ones(STARTER_K, dtype=np.int32))[:len(symbols)] > 0
    prints = {}
    hashes = run_hashes(ids, K)
    if len(hashes):
        covered = np.concatenate([[0], np.cumsum(is_starter)])
        valid = covered[K:] - covered[:-K] == 0
        if valid.any():
            masked = np.where(valid, hashes, np.int64(1 << 52))
            _, chosen = winnow(masked, WINDOW, remove_duplicates=False)
            for position in np.unique(chosen):
                if valid[position]:
                    prints.setdefault(int(hashes[position]), []).append(int(position))
    return (np.array(file_of, dtype=np.int32), np.array(line_of, dtype=np.int32), is_starter,
            prints)


# ---- answers ------------------------------------------------------------------------------

def prose_words(text):
    """[(normalised word, start, end)] of markdown prose: lowercased, accents and stop words
    dropped, a crude stem (plural -s, -ing, -ed, -ly); positions index `text`."""
    out = []
    for match in re.finditer(r"[^\W_]+", text):
        folded = unicodedata.normalize("NFKD", match.group().lower())
        word = "".join(c for c in folded if not unicodedata.combining(c))
        if not _WORD.fullmatch(word) or word in STOP_WORDS:
            continue
        for suffix in ("ing", "ed", "ly", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[:-len(suffix)]
                break
        out.append((word, match.start(), match.end()))
    return out


def answer_prints(words_by_question, starter_words):
    """{hash: [(question id, index of the first word)]}: every ANSWER_K neighbouring words,
    minus those the question's own text or the placeholder holds."""
    prints = {}
    for qid, words in words_by_question.items():
        seq = [w for w, _, _ in words]
        for i in range(len(seq) - ANSWER_K + 1):
            gram = " ".join(seq[i:i + ANSWER_K])
            if gram in starter_words.get(qid, ()):
                continue
            key = zlib.crc32(f"{qid}\0{gram}".encode())
            prints.setdefault(key, []).append((qid, i))
    return prints


def question_runs():
    """{question id: {word pairs of the question's text and the placeholder}}."""
    from grader import answers

    runs = {}
    for qid, text in answers.questions().items():
        seq = [w for w, _, _ in prose_words(text + " " + answers.PLACEHOLDER)]
        runs[qid] = {" ".join(seq[i:i + ANSWER_K]) for i in range(len(seq) - ANSWER_K + 1)}
    return runs


def notebook_answers(data):
    """{question id: answer text} of a notebook's bytes; {} when it cannot be read."""
    from grader import answers, notebook

    try:
        return answers.answers_of(notebook.read_notebook(data))["answers"]
    except (ValueError, UnicodeDecodeError):
        return {}


# ---- documents ----------------------------------------------------------------------------

_STARTER = {}  # in each worker: the starter's runs and the questions' words, sent once


def _start_worker(starter, starter_words):
    _STARTER.update(code=starter, words=starter_words)


def _prepare(job):
    """A worker's part: fingerprints of one document's code and answers."""
    files, notebook_bytes = job
    starter, starter_words = _STARTER["code"], _STARTER["words"]
    token_file, token_line, is_starter, prints = fingerprint_code(files, starter)
    answers = notebook_answers(notebook_bytes) if notebook_bytes else {}
    words = {qid: prose_words(text) for qid, text in answers.items()}
    return (token_file, token_line, is_starter, prints, answers, words,
            answer_prints(words, starter_words))


def documents_of(subs, archive=None):
    """Documents for grader.submission Submissions (an archive's when `archive` names it)."""
    docs = []
    for sub in subs:
        files = [(name, data.decode("utf-8", errors="replace"))
                 for name, data in sorted(sub.files.items(), key=lambda kv: (kv[0] != MODULE, kv[0]))
                 if name.endswith(".py")]
        name = sub.name if archive is None else f"{archive}/{sub.name}"
        docs.append(Document(name=name, source=sub.source, archive=archive,
                             identity=dict(sub.identity), error=sub.error, files=files,
                             notebook=sub.files.get(NOTEBOOK)))
    return docs


def fingerprint_all(docs, *, base=(), jobs=None, kit=KIT_ROOT):
    """Fill in every readable document's fingerprints, on `jobs` processes."""
    starter = starter_runs(kit, base)
    starter_words = question_runs()
    todo = [d for d in docs if d.error is None]
    work = [(d.files, d.notebook) for d in todo]
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(work) > 50:
        with ProcessPoolExecutor(jobs, initializer=_start_worker,
                                 initargs=(starter, starter_words)) as pool:
            results = list(pool.map(_prepare, work, chunksize=16))
    else:
        _start_worker(starter, starter_words)
        results = [_prepare(w) for w in work]
    for doc, result in zip(todo, results):
        (doc.token_file, doc.token_line, doc.starter, doc.fingerprints, doc.answers,
         doc.answer_words, doc.answer_prints) = result
        doc.notebook = None
    return docs


# ---- comparison ---------------------------------------------------------------------------

def common_cut(n_class, common=None):
    """The most class submissions a passage may share and still count as evidence."""
    return common if common is not None else max(MIN_COMMON, math.ceil(COMMON_FRACTION * n_class))


def _shared_counts(docs, attribute, cut):
    """({doc index: evidence hashes}, Counter of (i, j) -> shared evidence) over an inverted
    index; class-class and class-archive pairs only, i the class's."""
    df = Counter()
    for doc in docs:
        if doc.archive is None:
            df.update(getattr(doc, attribute).keys())
    evidence, index = {}, defaultdict(list)
    for i, doc in enumerate(docs):
        kept = {h for h in getattr(doc, attribute) if df[h] <= cut}
        evidence[i] = kept
        for h in kept:
            index[h].append(i)
    counts = Counter()
    for members in index.values():
        ours = [i for i in members if docs[i].archive is None]
        theirs = [i for i in members if docs[i].archive is not None]
        counts.update(itertools.combinations(ours, 2))
        counts.update(itertools.product(ours, theirs))
    return evidence, counts


def _containment(shared, size_a, size_b, floor):
    return shared / max(min(size_a, size_b), floor)


def compare(docs, *, common=None, shown=SHOWN):
    """Rank every pair that shares evidence; the details (shared passages) for the top ones."""
    readable = [d for d in docs if d.error is None]
    n_class = sum(d.archive is None for d in readable)
    cut = common_cut(n_class, common)
    code_ev, code_counts = _shared_counts(readable, "fingerprints", cut)
    text_ev, text_counts = _shared_counts(readable, "answer_prints", cut)
    pairs = []
    for i, j in set(code_counts) | set(text_counts):
        a, b = readable[i], readable[j]
        pair = Pair(a, b)
        pair.code = _containment(code_counts[i, j], len(code_ev[i]), len(code_ev[j]), CODE_FLOOR)
        pair.answers = _containment(text_counts[i, j], len(text_ev[i]), len(text_ev[j]),
                                    ANSWER_FLOOR)
        pair.ij = (i, j)
        pairs.append(pair)
    for pair in pairs:  # the run needs positions: only where there is something to see
        if code_counts[pair.ij] >= 2:
            _code_details(pair, code_ev[pair.ij[0]] & code_ev[pair.ij[1]])
    pairs.sort(key=lambda p: (-p.score, -p.code, -p.answers, p.a.name, p.b.name))
    for pair in pairs[:max(shown, sum(p.flagged for p in pairs))]:
        i, j = pair.ij
        _answer_details(pair, text_ev[i] & text_ev[j])
    return Comparison(documents=docs, pairs=pairs, clusters=clusters(pairs), common=cut,
                      unreadable=[d for d in docs if d.error is not None])


def _slices(positions):
    if not positions:
        return []
    starts, ends = get_copied_slices(np.array(sorted(positions)), K)
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def _code_details(pair, shared):
    a, b = pair.a, pair.b
    pair.slices_a = _slices([p for h in shared for p in a.fingerprints[h]])
    pair.slices_b = _slices([p for h in shared for p in b.fingerprints[h]])
    longest_a = max(pair.slices_a, key=lambda s: s[1] - s[0])
    longest_b = max((e - s for s, e in pair.slices_b), default=0)
    pair.run_tokens = min(longest_a[1] - longest_a[0], longest_b)
    pair.run_lines = _line_count(a, *longest_a)


def _line_count(doc, start, end):
    lines = {(int(doc.token_file[t]), int(doc.token_line[t])) for t in range(start, end)
             if doc.token_line[t] > 0}
    return len(lines)


def _answer_details(pair, shared):
    words = defaultdict(lambda: (set(), set()))
    for side, doc in enumerate((pair.a, pair.b)):
        for h in shared:
            for qid, i in doc.answer_prints[h]:
                words[qid][side].update(range(i, i + ANSWER_K))
    pair.shared_words = dict(words)


def clusters(pairs):
    """Groups of three or more documents joined by flagged pairs (connected components)."""
    parent = {}

    def root(doc):
        while parent.setdefault(doc.name, doc.name) != doc.name:
            doc = by_name[parent[doc.name]]
        return doc.name

    by_name = {}
    for pair in pairs:
        if pair.flagged:
            by_name[pair.a.name], by_name[pair.b.name] = pair.a, pair.b
            ra, rb = root(pair.a), root(pair.b)
            if ra != rb:
                parent[rb] = ra
    groups = defaultdict(list)
    for name, doc in by_name.items():
        groups[root(doc)].append(doc)
    found = [sorted(g, key=lambda d: d.name) for g in groups.values() if len(g) >= 3]
    return sorted(found, key=lambda g: (-len(g), g[0].name))


def line_ranges(doc, slices):
    """'file:12-30, 41' of the lines the token slices cover (the file named when not the module)."""
    by_file = defaultdict(set)
    for start, end in slices:
        for t in range(start, end):
            if doc.token_line[t] > 0:
                by_file[int(doc.token_file[t])].add(int(doc.token_line[t]))
    parts = []
    for index in sorted(by_file):
        lines = sorted(by_file[index])
        spans, first = [], lines[0]
        for prev, cur in zip(lines, lines[1:] + [None]):
            if cur != prev + 1:
                spans.append(f"{first}-{prev}" if prev != first else str(first))
                first = cur
        name = doc.files[index][0]
        parts.append(("" if name == MODULE else name + ":") + ", ".join(spans))
    return "; ".join(parts)


# ---- the command --------------------------------------------------------------------------

def _cell(value):
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


IDENTITY = ("student", "email", "sid")
CSV_COLUMNS = ["rank", "a", "b", *(f"{side}_{c}" for side in "ab" for c in IDENTITY),
               "b_from", "code_similarity", "answer_similarity", "longest_run_lines",
               "longest_run_tokens", "lines_a", "lines_b", "worth_a_look"]


def similar_csv(comparison):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rank, p in enumerate(comparison.pairs, 1):
        writer.writerow([_cell(v) for v in [
            rank, p.a.name, p.b.name, *(d.identity.get(c, "") for d in (p.a, p.b) for c in IDENTITY),
            p.b.origin, f"{p.code:.3f}", f"{p.answers:.3f}", p.run_lines, p.run_tokens,
            line_ranges(p.a, p.slices_a), line_ranges(p.b, p.slices_b),
            "yes" if p.flagged else ""]])
    return buffer.getvalue()


def archive_submissions(path):
    """The submissions of one --archive folder: an export (grader.exports), one submission, or
    a folder whose every .py, .zip and subfolder is one."""
    from grader import exports, submission

    subs = exports.collect([path])
    if len(subs) == 1 and subs[0].error and os.path.isdir(path):
        entries = [os.path.join(path, e) for e in sorted(os.listdir(path))
                   if not e.startswith(".") and e not in submission.IGNORED_DIRS
                   and (os.path.isdir(os.path.join(path, e)) or e.lower().endswith((".py", ".zip")))]
        if entries:
            subs = exports.collect(entries)
    for sub in subs:
        sub.source = os.path.relpath(sub.source, path)
    return subs


def archive_labels(paths):
    """A short, distinct label per archive folder (its name, numbered when two share one)."""
    from grader.submission import safe_name

    labels, seen = [], Counter()
    for path in paths:
        label = safe_name(os.path.basename(os.path.normpath(path)), "archive")
        seen[label] += 1
        labels.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    return labels


def find_similar(subs, *, out, archives=(), base=(), common=None, jobs=None):
    """`grade.py similar`: compare, write DIR/similar.csv and DIR/similar.html; exit code
    (0; 1 when a submission could not be read; 2 on a usage error, before anything is read)."""
    from grader import exports, outdir, report, similar_html, submission

    try:
        for path in [*archives, *base]:
            if not os.path.exists(path):
                raise submission.UsageError(f"'{path}' does not exist; pass a folder of past "
                                            "submissions or solutions (or a starter file for --base)")
        with outdir.locked(out):
            docs = documents_of(exports.collect(subs))
            for label, path in zip(archive_labels(archives), archives):
                docs += documents_of(archive_submissions(path), archive=label)
            fingerprint_all(docs, base=base, jobs=jobs)
            comparison = compare(docs, common=common)
            report.write_atomically(os.path.join(out, CSV_NAME), similar_csv(comparison))
            report.write_atomically(os.path.join(out, HTML_NAME), similar_html.page(comparison))
    except submission.UsageError as e:
        print(f"grade.py similar: {e}", file=sys.stderr)
        return 2
    flagged = sum(p.flagged for p in comparison.pairs)
    n_class = sum(d.archive is None for d in docs)
    print(f"compared {n_class} submissions and {len(docs) - n_class} archived ones: "
          f"{flagged} pairs worth a look, {len(comparison.clusters)} groups of three or more")
    for doc in comparison.unreadable:
        print(f"could not read {doc.name}: {doc.error}", file=sys.stderr)
    print(f"wrote {os.path.join(out, HTML_NAME)} and {os.path.join(out, CSV_NAME)} "
          "(a ranking for a person to judge, not a verdict)")
    return 1 if comparison.unreadable else 0
