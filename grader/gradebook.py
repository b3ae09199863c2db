"""The gradebook: grades.csv, and the same rows in the format a gradebook imports.

One row a student: a group submission gives each of its members their own row with the group's
score. Every cell is safe in a spreadsheet and a terminal (`safe_cell`), whatever a student put
in their name. Lateness is kept as the export said it (Gradescope's `submitted_at`, Canvas's
LATE marker); a `LatePolicy` (a due time, a penalty per day, a cap, per-student extensions)
turns it into a penalty in its own column, never folded silently into the tests' total.

Formats (`--format`), each written beside grades.csv, with the identifiers its import matches on:

- `plain` (grades.csv): name, student, email, sid (the school's student id; never a Canvas user
  id, which goes in canvas_id), canvas_id, one column a test, total,
  max_points, late columns, final (total - late_penalty, when a penalty applies), percent,
  notebook, notebook_seconds, flags.
- `canvas` (canvas.csv): Canvas's gradebook import: `Student`, `ID` (the Canvas user id, the
  number in the bulk download's file names: what Canvas matches a row on, so two students of
  the same name stay apart; a row from a Gradescope export has none and carries its school
  SID in `SIS User ID`, or else its email in `SIS Login ID`), `Section`, then one assignment
  column, `Title (assignment id)` as Canvas's own export heads it, after a `Points Possible`
  row.
- `gradescope` (gradescope.csv): the columns as Gradescope's assignment grade export names
  them: `Name`, `SID`, `Email`, `Total Score`, `Max Points`, `Submission Time`,
  `Lateness (H:M:S)`.

canvas.csv and gradescope.csv are made from grades.csv's text (`canvas`, `gradescope`), after
the TA's merged written scores are in it, so they carry the same total, late penalty and final. A row
that could not be graded is left out of both (`left_out`): its 0 would replace the student's
grade, while Canvas's import changes nothing for a student without a row.
"""
import csv
import dataclasses
import datetime
import io
import math
import re

from grader.rubric import RUBRIC

MAX_POINTS = sum(RUBRIC.values())
IDENTITY_COLUMNS = ("student", "email", "sid")
PLAIN_IDENTITY = (*IDENTITY_COLUMNS, "canvas_id")  # grades.csv's, each when any row has it
FORMATS = ("plain", "canvas", "gradescope")
FORMAT_FILES = {"plain": "grades.csv", "canvas": "canvas.csv", "gradescope": "gradescope.csv"}
NOT_GRADED = "could not be graded"
DEFAULT_CANVAS_ASSIGNMENT = "Two-layer net"
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
# Canvas's importer drops every column whose header contains one of these (its totals and
# overrides), so an assignment column named with one would never be imported.
CANVAS_NOT_ASSIGNMENTS = ("Current Score", "Current Points", "Current Grade", "Final Score",
                          "Final Points", "Final Grade", "Override Score", "Override Grade",
                          "Override Status")
GRADESCOPE_COLUMNS = ("Name", "SID", "Email", "Total Score", "Max Points", "Submission Time",
                      "Lateness (H:M:S)")

# Terminal escapes: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other ESC sequences,
# and their one-byte C1 forms; then every other control character.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]"
                      r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x9c]*[\x07\x9c]?|\x1b")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def terminal_text(value):
    """`value` as text without terminal escapes or control characters (each run of them, line
    breaks and tabs included, becomes one space)."""
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return _CONTROLS.sub(" ", _ESCAPES.sub("", text))


def plain_text(text):
    """`text` without terminal escapes or control characters (a tab becomes a space), keeping
    its line breaks."""
    return "\n".join(terminal_text(line) for line in str(text).split("\n"))


def safe_cell(value):
    """A text cell that a spreadsheet shows as text and a terminal prints as text: no escapes,
    no line breaks (a bare CR would start a new row in some readers), and a leading `'` when it
    would start with a formula character (= + - @, also after spaces)."""
    text = terminal_text(value).strip()
    return "'" + text if text.startswith(_FORMULA_START) else text


def number(value):
    """A score as a spreadsheet number: 15 rather than 15.0."""
    value = round(float(value), 4)
    return int(value) if value.is_integer() else value


@dataclasses.dataclass
class LatePolicy:
    """How lateness becomes a penalty. `due`: aware datetime (None: no due time known);
    `per_day`: percent of MAX_POINTS per day or part of a day late; `cap`: the most percent
    taken; `extensions`: {identifier, lowercased (a sid, email, name or Canvas id; a row's name
    for a row that knows nobody): aware datetime}; `extensions_file` and `extension_lines`
    ({identifier: (line, value as written)}): where each extension came from, to name it when it
    matches nobody."""
    due: datetime.datetime = None
    per_day: float = 0.0
    cap: float = 100.0
    extensions: dict = dataclasses.field(default_factory=dict)
    extensions_file: str = ""
    extension_lines: dict = dataclasses.field(default_factory=dict)

    def due_for(self, keys, used=None):
        """The due time of the first of `keys` with an extension (added to `used`), else due."""
        for key in keys:
            if key and key.lower() in self.extensions:
                if used is not None:
                    used.add(key.lower())
                return self.extensions[key.lower()]
        return self.due

    def kept(self):
        """The policy as JSON data (DIR/.gradebook.json keeps it for reruns)."""
        return {"due": self.due.isoformat() if self.due else None, "late_penalty": self.per_day,
                "late_cap": self.cap, "extensions_file": self.extensions_file,
                "extensions": {k: [when.isoformat(), *self.extension_lines.get(k, ("", k))]
                               for k, when in sorted(self.extensions.items())}}

    @classmethod
    def from_kept(cls, data):
        """The policy kept by kept(); PolicyError when it cannot be read back."""
        try:
            due = parse_time(data["due"], "the kept due time") if data.get("due") else None
            extensions, lines = {}, {}
            for key, (when, line, value) in (data.get("extensions") or {}).items():
                extensions[key] = parse_time(when, "a kept extension")
                lines[key] = (line, value)
            return cls(due=due, per_day=float(data.get("late_penalty") or 0),
                       cap=float(data.get("late_cap", 100)), extensions=extensions,
                       extensions_file=str(data.get("extensions_file") or ""),
                       extension_lines=lines)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise PolicyError(f"the kept late policy cannot be read ({e})") from None

    def describe(self):
        """The policy as the options that give it ('none' when it has none)."""
        parts = []
        if self.due:
            parts.append(f"--due {self.due.isoformat()}")
        if self.per_day:
            parts.append(f"--late-penalty {self.per_day:g}")
        if self.cap != 100:
            parts.append(f"--late-cap {self.cap:g}")
        if self.extensions:
            n = len(self.extensions)
            parts.append(f"--extensions {self.extensions_file or '(a file)'} ({n} student"
                         f"{'s' if n > 1 else ''})")
        return " ".join(parts) or "none"

    def changes(self, other):
        """What differs from `other` (the policy before), as 'option: old -> new' text."""
        mine, theirs = self.kept(), other.kept()
        names = {"due": "--due", "late_penalty": "--late-penalty", "late_cap": "--late-cap",
                 "extensions": "--extensions"}
        said = []
        for key, option in names.items():
            if mine[key] != theirs[key]:
                if key == "extensions":
                    def count(n):
                        return f"{n} student{'' if n == 1 else 's'}"
                    said.append(f"{option}: {count(len(theirs[key]))} -> "
                                f"{count(len(mine[key]))}"
                                + (" (other students or due times)"
                                   if len(mine[key]) == len(theirs[key]) else ""))
                else:
                    said.append(f"{option}: {_shown(theirs[key])}"
                                f" -> {_shown(mine[key])}")
        return "; ".join(said)


def _shown(value):
    """A kept policy value as an option's text: 'none', 10 rather than 10.0."""
    if value is None:
        return "none"
    return number(value) if isinstance(value, float) else value


class PolicyError(ValueError):
    """A late policy that cannot be used (a due time or extensions file that does not parse),
    or a gradebook option that cannot be (a Canvas assignment column Canvas would misread)."""


def parse_time(text, what):
    """An aware datetime from ISO 8601 text ('2024-02-10 23:59', '2024-02-10T23:59:00-08:00');
    a time without a zone is UTC."""
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PolicyError(f"{what} '{text}' is not a date and time; write it as "
                          "2024-02-10T23:59:00-08:00 (ISO 8601; without a zone it is UTC)") from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def read_extensions(path, due, lines=None):
    """{identifier: due datetime} from a CSV (as Excel saves it: a byte-order mark is fine) with
    a `student` column (a sid, an email, a name or a row name) and either `due` (a date and
    time) or `days` (added to `due`). `lines`, when given, gets {identifier: (line, the
    student cell as written)}."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise PolicyError(f"--extensions '{path}' cannot be read ({e.strerror or e})") from None
    found = {}
    for line, row in enumerate(rows, 2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        who = row.get("student", "")
        if not who:
            raise PolicyError(f"--extensions '{path}' line {line}: no `student` (a sid, email or "
                              "name); the columns are student and due (or days)")
        if lines is not None:
            lines[who.lower()] = (line, who)
        if row.get("due"):
            found[who.lower()] = parse_time(row["due"], f"--extensions line {line}: due")
        elif row.get("days"):
            if due is None:
                raise PolicyError(f"--extensions '{path}' line {line} gives days; pass --due too")
            try:
                found[who.lower()] = due + datetime.timedelta(days=float(row["days"]))
            except ValueError:
                raise PolicyError(f"--extensions '{path}' line {line}: days '{row['days']}' is "
                                  "not a number") from None
        else:
            raise PolicyError(f"--extensions '{path}' line {line}: '{who}' has neither due nor "
                              "days")
    return found


def _members(identity):
    """One identity a student: a group's members each, else the row's own."""
    members = identity.get("members") or []
    if len(members) > 1:
        return [dict(m) for m in members]
    member = {k: identity[k] for k in PLAIN_IDENTITY if identity.get(k)}
    if member.get("canvas_id") and member.get("sid") == member["canvas_id"]:
        del member["sid"]  # results written before Canvas ids were kept out of sid
    return [member]


def _lateness(identity, member, name, policy, used=None):
    """(submitted_at, late, late_days, late_penalty points, flags) for one student; the
    extension that applied, if any, is added to `used`."""
    flags = []
    submitted = identity.get("submitted_at", "")
    marker = identity.get("late")
    late, days, penalty = ("yes" if marker else ("no" if marker is False else "")), "", None
    keys = [member.get("sid"), member.get("email"), member.get("student"),
            member.get("canvas_id")]
    # The row's name last, and never for a group's member: a group's row is named after one
    # member (rows() passes name=None for them).
    due = policy.due_for([*keys, name] if name else keys, used)
    if due is not None and submitted:
        try:
            when = parse_time(submitted, "submitted_at")
        except PolicyError:
            when = None
            flags.append(f"late: submitted_at '{submitted}' cannot be read; no penalty applied")
        if when is not None:
            over = (when - due).total_seconds()
            late = "yes" if over > 0 else "no"
            days = number(over / 86400) if over > 0 else 0
            percent = min(policy.cap, policy.per_day * math.ceil(max(over, 0) / 86400))
            penalty = MAX_POINTS * percent / 100
    elif marker and policy.per_day:
        flags.append("late by Canvas's marker, by how much is unknown: no penalty applied; "
                     "set it by hand")
    return submitted, late, days, penalty, flags


def rows(results, policy=None, used=None):
    """[dict] one a student, in name order: every column of the plain format, and `_flags`
    (the list the flags column joins); the extensions that applied are added to `used`."""
    policy = policy or LatePolicy()
    out = []
    for name, result in sorted(results.items()):
        extra = result.extra_data or {}
        identity = extra.get("identity") or {}
        scores = {t.name: t.score for t in result.tests}
        members = _members(identity)
        for member in members:
            submitted, late, days, penalty, late_flags = _lateness(
                identity, member, name if len(members) == 1 else None, policy, used)
            total = result.score
            final = max(0.0, total - penalty) if penalty else total
            if extra.get("graded") is False:
                final = 0.0
            flags = list(extra.get("flags") or []) + late_flags
            if len(members) > 1:
                flags.append(f"group of {len(members)}: one submission, the group's score")
            out.append({
                "name": name, **{c: member.get(c, "") for c in PLAIN_IDENTITY},
                **{t: number(scores.get(t, 0.0)) for t in RUBRIC},
                "total": number(total), "max_points": MAX_POINTS,
                "submitted_at": submitted, "late": late, "late_days": days,
                "late_penalty": "" if penalty is None else number(penalty),
                "final": number(final), "percent": number(100 * final / MAX_POINTS),
                "notebook": extra.get("notebook_status", ""),
                "notebook_seconds": extra.get("notebook_seconds", ""),
                "flags": "; ".join(flags), "_flags": flags,
            })
    return out


def _write(header, records):
    """CSV text: every text cell through safe_cell, numbers as they are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for record in records:
        writer.writerow([safe_cell(v) if isinstance(v, str) else v for v in record])
    return buffer.getvalue()


def plain(results, policy=None):
    """grades.csv: the identity columns known for any row, one column a test, total, max_points,
    the late columns (when any row has lateness; with a penalty, final = total - late_penalty),
    percent (of final), the notebook columns (when any was run) and flags."""
    table = rows(results, policy)
    known = [c for c in PLAIN_IDENTITY if any(r[c] for r in table)]
    late = [c for c in ("submitted_at", "late", "late_days", "late_penalty")
            if any(r[c] not in ("", None) for r in table)]
    notebook = [c for c in ("notebook", "notebook_seconds") if any(r[c] != "" for r in table)]
    final = ["final"] if "late_penalty" in late else []
    header = ["name", *known, *RUBRIC, "total", "max_points", *late, *final, "percent",
              *notebook, "flags"]
    return _write(header, ([r[c] for c in header] for r in table))


def canvas_assignment(text):
    """The header of canvas.csv's assignment column from --canvas-assignment: 'Title (id)'
    (Canvas's importer takes the id from a final ' (digits)' and matches the assignment by it)
    or a bare title (matched to an assignment of exactly that title, else Canvas creates one).
    PolicyError for a value Canvas would misread."""
    value = str(text).strip()
    if not value or value != terminal_text(value) or safe_cell(value) != value:
        raise PolicyError(f"--canvas-assignment {text!r} is not a column header Canvas can read "
                          "(empty, a control character or a leading = + - @); give the "
                          "assignment's title and id as 'Two-layer net (12345)'")
    if re.search(r"\S\(\d+\)$", value):
        raise PolicyError(f"--canvas-assignment '{value}': Canvas reads the assignment id only "
                          "after a space; write it as '" + re.sub(r"\((\d+)\)$", r" (\1)", value)
                          + "'")
    clash = [name for name in CANVAS_NOT_ASSIGNMENTS if name in value]
    if clash or value in CANVAS_COLUMNS:
        raise PolicyError(f"--canvas-assignment '{value}': Canvas's import reads a column named "
                          f"with '{(clash or [value])[0]}' as one of its own, never as an "
                          "assignment; use the assignment's title and id, e.g. "
                          "'Two-layer net (12345)'")
    return value


def canvas_has_id(header):
    """Whether a canvas.csv assignment header names the Canvas assignment id."""
    return re.search(r"\s\(\d+\)$", header) is not None


def _grades(text):
    """grades.csv's rows (text, as `plain` or a merge wrote it) that a gradebook may take, and the
    points each row is out of; the score is `final` where a penalty column exists, else `total`.
    A submission that could not be graded is left out: its 0 would replace the grade the student
    has (Canvas's import changes nothing for a student with no row, see left_out)."""
    table = [row for row in csv.DictReader(io.StringIO(text))
             if not row.get("flags", "").startswith(NOT_GRADED)]
    for row in table:
        row["_score"] = number(row.get("final") or row.get("total") or "0")
        row["_max"] = number(row.get("max_points") or MAX_POINTS)
    return table


def left_out(grades_text):
    """The names of grades.csv's rows that canvas.csv and gradescope.csv leave out: the
    submissions that could not be graded (a person must look)."""
    return [row["name"] for row in csv.DictReader(io.StringIO(grades_text))
            if row.get("flags", "").startswith(NOT_GRADED)]


def canvas(grades_text, assignment=DEFAULT_CANVAS_ASSIGNMENT):
    """canvas.csv from grades.csv's text: Canvas's gradebook import (matched on ID, the Canvas
    user id; else SIS User ID, else SIS Login ID), one assignment column headed `assignment`;
    without the rows that could not be graded (left_out)."""
    table = _grades(grades_text)
    points = table[0]["_max"] if table else MAX_POINTS
    records = [["Points Possible", "", "", "", "", points]]
    for r in table:
        canvas_id, sid = r.get("canvas_id", ""), r.get("sid", "")
        records.append([r.get("student") or r["name"], canvas_id, "" if canvas_id else sid,
                        "" if canvas_id or sid else r.get("email", ""), "", r["_score"]])
    return _write([*CANVAS_COLUMNS, assignment], records)


def lateness_hms(late_days):
    """Gradescope's lateness text, hours:minutes:seconds with hours past 24 ('60:00:00' for 2.5
    days), from grades.csv's late_days, to the minute (late_days keeps 4 decimals, 8.6 s)."""
    if late_days in ("", None):
        return ""
    minutes = round(float(late_days) * 24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def gradescope(grades_text):
    """gradescope.csv from grades.csv's text: the columns of Gradescope's assignment grade
    export (GRADESCOPE_COLUMNS); Total Score is the score after a penalty, with the written
    answers once merged; SID only where a real student id is known (never a Canvas user id);
    without the rows that could not be graded (left_out)."""
    table = _grades(grades_text)
    return _write(GRADESCOPE_COLUMNS, ([r.get("student") or r["name"], r.get("sid", ""),
                                        r.get("email", ""), r["_score"], r["_max"],
                                        r.get("submitted_at", ""),
                                        lateness_hms(r.get("late_days"))] for r in table))


FROM_GRADES = {"canvas": canvas, "gradescope": gradescope}  # grades.csv's text -> the file


# Why a flag needs a person, by the start of its text (rows()'s `_flags`); the first that
# matches names the group in needs_a_person's lines. Anything else is the audit's or the export's.
ATTENTION = (
    ("renamed", "renamed (another row would have had the same name: check who it is before "
                "you upload)"),
    ("late by Canvas's marker", "late by Canvas's marker, by how much is unknown (no penalty "
                                "applied: set it by hand in your gradebook)"),
    ("late:", "late time that cannot be read (no penalty applied)"),
    ("group of", "group members (one submission, each member given the group's score)"),
)
OTHER_FLAGS = "flagged by the code audit or the export (read the row's flags)"
FLAG_SHOWN = 70  # characters of an audit flag shown beside its row in the summary


def needs_a_person(table):
    """Lines naming, grouped by reason, every row of `table` (rows()) with a flag other than
    could-not-be-graded (the summary names those already): renamed rows, Canvas-late rows
    whose penalty is unknown, group rows, audit and export flags."""
    groups = {why: [] for _, why in ATTENTION}
    groups[OTHER_FLAGS] = []
    for row in table:
        name, other = terminal_text(row["name"]), []
        for flag in row["_flags"]:
            if flag.startswith(NOT_GRADED):
                continue
            why = next((w for start, w in ATTENTION if flag.startswith(start)), OTHER_FLAGS)
            if why == OTHER_FLAGS:
                other.append(terminal_text(flag))
            elif name not in groups[why]:
                groups[why].append(name)
        if other:  # the surest first: "autograd ..." before "possible autograd ..."
            other.sort(key=lambda f: f.startswith("possible"))
            shown = other[0][:FLAG_SHOWN] + ("..." if len(other[0]) > FLAG_SHOWN else "")
            more = f"; {len(other) - 1} more" if len(other) > 1 else ""
            label = f"{name} ({shown}{more})"
            if label not in groups[OTHER_FLAGS]:
                groups[OTHER_FLAGS].append(label)
    found = {why: names for why, names in groups.items() if names}
    if not found:
        return []
    count = len({row["name"] for row in table
                 if any(not f.startswith(NOT_GRADED) for f in row["_flags"])})
    lines = [f"{count} row{'s need' if count > 1 else ' needs'} a person (grades.csv's flags say "
             "why):"]
    lines += [f"  {why}: {', '.join(names)}" for why, names in found.items()]
    return lines


def unmatched_extensions(results, policy):
    """A warning line for each --extensions row whose student matches no row of `results`."""
    if not policy or not policy.extensions:
        return []
    used = set()
    rows(results, policy, used)
    lines = []
    for key in sorted(set(policy.extensions) - used,
                      key=lambda k: policy.extension_lines.get(k, (0, k))[0] or 0):
        line, value = policy.extension_lines.get(key, ("", key))
        where = f"'{policy.extensions_file}'" + (f" line {line}" if line else "")
        lines.append(f"warning: --extensions {where}: student '{terminal_text(value)}' matches no "
                     "row (no sid, email, name, Canvas id or row name); its extension applies to "
                     "nobody. Fix the file if it is a typo (a class-wide file may list students "
                     "who did not submit)")
    return lines


def not_graded(results):
    """Names of the rows whose submission could not be graded, in order."""
    return [name for name, r in sorted(results.items())
            if (r.extra_data or {}).get("graded") is False]
