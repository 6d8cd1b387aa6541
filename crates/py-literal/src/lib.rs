//! Python literals without Python: a reader that accepts what `ast.literal_eval` accepts and a
//! writer byte-identical to Python's `repr()` and `pprint.pformat()`.
//!
//! Checkmk keeps several files as Python literals: the MKP `info` manifest (written with
//! `pprint.pformat`), and the agent updater's `cmk-update-agent.state` (a `repr` of a dict) and
//! `cmk-update-agent.cfg` (`name = literal` lines). This crate reads and writes all of them.
//!
//! * [`parse`] reads one literal: dict, list, tuple, str (with `u`/`r`/`b` prefixes, escapes,
//!   triple quotes and implicit concatenation), bytes, int, float, `True`/`False`/`None`.
//! * [`parse_assignments`] reads a sequence of `name = literal` statements.
//! * [`parse_statements`] reads the top-level statements of Checkmk's site files (`x += [..]`,
//!   `x.update({..})`, `x['k'] = [..] + x['k']`) and skips other shapes without running them.
//! * [`PyValue::repr`] and [`PyValue::pformat`] write Python's `repr()` and
//!   `pprint.pformat()` (width 80, indent 1, sorted dict keys) byte for byte.
//! * With the `serde_json` feature, the `json` module converts between [`PyValue`] and
//!   `serde_json::Value`.
//!
//! ```
//! use py_literal::{PyValue, parse};
//!
//! let v = parse("{u'name': 'demo' \"_pkg\", 'version': (1, 2.5), 'ok': None}")?;
//! assert_eq!(v.repr(), "{'name': 'demo_pkg', 'ok': None, 'version': (1, 2.5)}");
//! assert!(parse("__import__('os').system('id')").is_err_and(|e| e.not_literal));
//! # Ok::<(), py_literal::LiteralError>(())
//! ```
//!
//! # Security
//!
//! Nothing is ever evaluated: the reader is a plain parser over the literal grammar, names and
//! calls are rejected (see [`LiteralError::not_literal`]). Nesting of dicts, lists and tuples is
//! bounded (100 levels), so hostile input cannot exhaust the stack; integers beyond 64 bits are
//! rejected instead of growing without bound.

#![warn(missing_docs)]

#[cfg(feature = "serde_json")]
pub mod json;
mod unicode_tables;

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::unicode_tables::NON_PRINTABLE;

/// A value of the Python literal subset that MKP manifests use.
///
/// Dicts keep their keys in source order (duplicate keys keep the first position and the
/// last value, as Python does); writing sorts them like `pprint`.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// An integer (64 bits; larger literals are rejected).
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A bytes literal (`b'...'`).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<PyValue>),
    /// A tuple.
    Tuple(Vec<PyValue>),
    /// A dict, in source order.
    Dict(Vec<(PyValue, PyValue)>),
}

/// Why a literal could not be read; line and column are 1-based (column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// `true` when the text is valid Python but not a plain literal (a name, a call, ...).
    pub not_literal: bool,
}

impl std::fmt::Display for LiteralError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for LiteralError {}

impl PyValue {
    /// Python's `repr()` of this value (dict keys sorted, as `pprint` does).
    pub fn repr(&self) -> String {
        let mut out = String::new();
        repr_into(self, &mut out);
        out
    }

    /// `pprint.pformat(self)` with Python's defaults (width 80, indent 1, sorted keys).
    pub fn pformat(&self) -> String {
        let mut out = String::new();
        format_value(self, &mut out, 0, 0, 0);
        out
    }

    /// This value with every dict's items in the order `pprint` writes them
    /// (sorted by key, at every depth): what reading [`PyValue::pformat`]'s
    /// output gives back, since a dict here keeps its source order.
    pub fn with_sorted_dicts(&self) -> PyValue {
        match self {
            PyValue::List(items) => {
                PyValue::List(items.iter().map(Self::with_sorted_dicts).collect())
            }
            PyValue::Tuple(items) => {
                PyValue::Tuple(items.iter().map(Self::with_sorted_dicts).collect())
            }
            PyValue::Dict(items) => PyValue::Dict(
                sorted_items(items)
                    .into_iter()
                    .map(|(k, v)| (k.with_sorted_dicts(), v.with_sorted_dicts()))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Whether every float in this value is finite. `pprint` writes infinity and
    /// NaN as `inf` and `nan`, which are names, not literals: a value holding one
    /// cannot be read back from its own text (`1e999` reads as infinity).
    pub fn floats_are_finite(&self) -> bool {
        match self {
            PyValue::Float(f) => f.is_finite(),
            PyValue::List(items) | PyValue::Tuple(items) => {
                items.iter().all(Self::floats_are_finite)
            }
            PyValue::Dict(items) => items
                .iter()
                .all(|(k, v)| k.floats_are_finite() && v.floats_are_finite()),
            _ => true,
        }
    }

    /// The string, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Python's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "None",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Bytes(_) => "bytes",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
        }
    }

    fn type_rank(&self) -> u8 {
        match self {
            PyValue::None => 0,
            PyValue::Bool(_) | PyValue::Int(_) | PyValue::Float(_) => 1,
            PyValue::Str(_) => 2,
            PyValue::Bytes(_) => 3,
            PyValue::List(_) => 4,
            PyValue::Tuple(_) => 5,
            PyValue::Dict(_) => 6,
        }
    }
}

fn num_value(v: &PyValue) -> Option<f64> {
    match v {
        PyValue::Bool(b) => Some(f64::from(u8::from(*b))),
        #[allow(clippy::cast_precision_loss)]
        PyValue::Int(i) => Some(*i as f64),
        PyValue::Float(f) => Some(*f),
        _ => None,
    }
}

/// The order `pprint` sorts dict keys in: natural order within a type, else by type.
fn key_order(a: &PyValue, b: &PyValue) -> Ordering {
    match (a, b) {
        (PyValue::Str(x), PyValue::Str(y)) => x.cmp(y),
        (PyValue::Bytes(x), PyValue::Bytes(y)) => x.cmp(y),
        (PyValue::Int(x), PyValue::Int(y)) => x.cmp(y),
        (PyValue::Tuple(x), PyValue::Tuple(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = key_order(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => match (num_value(a), num_value(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => a.type_rank().cmp(&b.type_rank()),
        },
    }
}

fn sorted_items(items: &[(PyValue, PyValue)]) -> Vec<&(PyValue, PyValue)> {
    let mut v: Vec<&(PyValue, PyValue)> = items.iter().collect();
    v.sort_by(|a, b| key_order(&a.0, &b.0));
    v
}

// ---------------------------------------------------------------------------------------------
// repr

fn is_printable(c: char) -> bool {
    let cp = c as u32;
    if cp == 0x20 {
        return true;
    }
    NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                Ordering::Less
            } else if lo > cp {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_err()
}

/// Appends Python's `repr()` of a `str` to `out`.
pub fn repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let cp = c as u32;
                // Writing to a String cannot fail.
                let _ = if cp < 0x100 {
                    write!(out, "\\x{cp:02x}")
                } else if cp < 0x10000 {
                    write!(out, "\\u{cp:04x}")
                } else {
                    write!(out, "\\U{cp:08x}")
                };
            }
        }
    }
    out.push(quote);
}

fn repr_bytes(b: &[u8], out: &mut String) {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    out.push('b');
    out.push(char::from(quote));
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(char::from(c));
            }
            0x20..=0x7e => out.push(char::from(c)),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(char::from(quote));
}

/// Python's `repr()` of a float (shortest round-trip digits, Python's notation rules).
pub fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = usize::try_from(exp + 1).unwrap_or(0);
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n(
                '0',
                usize::try_from(-exp - 1).unwrap_or(0),
            ));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

fn repr_into(v: &PyValue, out: &mut String) {
    match v {
        PyValue::None => out.push_str("None"),
        PyValue::Bool(true) => out.push_str("True"),
        PyValue::Bool(false) => out.push_str("False"),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::Float(f) => out.push_str(&repr_float(*f)),
        PyValue::Str(s) => repr_str(s, out),
        PyValue::Bytes(b) => repr_bytes(b, out),
        PyValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_into(item, out);
            }
            out.push(']');
        }
        PyValue::Tuple(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_into(item, out);
            }
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        PyValue::Dict(items) => {
            out.push('{');
            for (i, (k, v)) in sorted_items(items).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_into(k, out);
                out.push_str(": ");
                repr_into(v, out);
            }
            out.push('}');
        }
    }
}

// ---------------------------------------------------------------------------------------------
// pprint

const WIDTH: usize = 80;

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `PrettyPrinter._format`: write the one-line repr if it fits, else the container layout.
fn format_value(v: &PyValue, out: &mut String, indent: usize, allowance: usize, level: usize) {
    let rep = v.repr();
    let max_width = WIDTH.saturating_sub(indent + allowance);
    // `WIDTH - indent - allowance` may be negative in Python; then everything "does not fit".
    let fits = WIDTH >= indent + allowance && char_len(&rep) <= max_width;
    if !fits {
        match v {
            PyValue::Dict(items) => {
                out.push('{');
                if !items.is_empty() {
                    format_dict_items(items, out, indent, allowance + 1, level + 1);
                }
                out.push('}');
                return;
            }
            PyValue::List(items) => {
                out.push('[');
                format_items(items, out, indent, allowance + 1, level + 1);
                out.push(']');
                return;
            }
            PyValue::Tuple(items) => {
                let end = if items.len() == 1 { ",)" } else { ")" };
                out.push('(');
                format_items(items, out, indent, allowance + end.len(), level + 1);
                out.push_str(end);
                return;
            }
            PyValue::Str(s) => {
                format_str(s, out, indent, allowance, level + 1);
                return;
            }
            _ => {}
        }
    }
    out.push_str(&rep);
}

fn format_dict_items(
    items: &[(PyValue, PyValue)],
    out: &mut String,
    indent: usize,
    allowance: usize,
    level: usize,
) {
    let indent = indent + 1;
    let sorted = sorted_items(items);
    let last_index = sorted.len().saturating_sub(1);
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        let last = i == last_index;
        let rep = key.repr();
        out.push_str(&rep);
        out.push_str(": ");
        format_value(
            value,
            out,
            indent + char_len(&rep) + 2,
            if last { allowance } else { 1 },
            level,
        );
        if !last {
            out.push_str(",\n");
            out.extend(std::iter::repeat_n(' ', indent));
        }
    }
}

fn format_items(
    items: &[PyValue],
    out: &mut String,
    indent: usize,
    allowance: usize,
    level: usize,
) {
    let indent = indent + 1;
    let last_index = items.len().saturating_sub(1);
    for (i, item) in items.iter().enumerate() {
        let last = i == last_index;
        if i > 0 {
            out.push_str(",\n");
            out.extend(std::iter::repeat_n(' ', indent));
        }
        format_value(item, out, indent, if last { allowance } else { 1 }, level);
    }
}

/// Python's `str.isspace()`.
pub fn py_is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\x0b'
            | '\x0c'
            | '\r'
            | '\x1c'..='\x1f'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `str.splitlines(keepends=True)`.
fn split_lines_keep_ends(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            let mut end = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = iter.peek()
            {
                end = j + 1;
                iter.next();
            }
            lines.push(&s[start..end]);
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// `re.findall(r'\S*\s*', line)` without the final empty match.
fn word_space_parts(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in line.char_indices() {
        let space = py_is_space(c);
        if !space && in_space {
            parts.push(&line[start..i]);
            start = i;
        }
        in_space = space;
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
}

fn str_repr(s: &str) -> String {
    let mut out = String::new();
    repr_str(s, &mut out);
    out
}

/// `PrettyPrinter._pprint_str`: split a long string into adjacent literals.
fn format_str(s: &str, out: &mut String, mut indent: usize, mut allowance: usize, level: usize) {
    if s.is_empty() {
        out.push_str(&str_repr(s));
        return;
    }
    let lines = split_lines_keep_ends(s);
    if level == 1 {
        indent += 1;
        allowance += 1;
    }
    let max_width = WIDTH as isize - indent as isize;
    let mut max_width1 = max_width;
    let mut chunks: Vec<String> = Vec::new();
    let mut rep = String::new();
    let n_lines = lines.len();
    for (i, line) in lines.iter().enumerate() {
        rep = str_repr(line);
        if i == n_lines - 1 {
            max_width1 -= allowance as isize;
        }
        if char_len(&rep) as isize <= max_width1 {
            chunks.push(rep.clone());
        } else {
            let parts = word_space_parts(line);
            let mut max_width2 = max_width;
            let mut current = String::new();
            let n_parts = parts.len();
            for (j, part) in parts.iter().enumerate() {
                let candidate = format!("{current}{part}");
                if j == n_parts - 1 && i == n_lines - 1 {
                    max_width2 -= allowance as isize;
                }
                if char_len(&str_repr(&candidate)) as isize > max_width2 {
                    if !current.is_empty() {
                        chunks.push(str_repr(&current));
                    }
                    current = (*part).to_string();
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                chunks.push(str_repr(&current));
            }
        }
    }
    if chunks.len() == 1 {
        out.push_str(&rep);
        return;
    }
    if level == 1 {
        out.push('(');
    }
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str(chunk);
    }
    if level == 1 {
        out.push(')');
    }
}

// ---------------------------------------------------------------------------------------------
// parser

/// Parses a Python literal the way `ast.literal_eval` accepts it (without evaluating).
pub fn parse(text: &str) -> Result<PyValue, LiteralError> {
    // Python's tokenizer reads `\r\n` and `\r` as `\n` everywhere, also inside
    // triple-quoted strings.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
        newline_ends: false,
    };
    p.skip_ws();
    if p.pos >= p.chars.len() {
        return Err(p.err("the text is empty, expected a Python literal"));
    }
    let value = p.value()?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return Err(p.err("unexpected text after the literal (perhaps a missing comma?)"));
    }
    Ok(value)
}

/// Parses a sequence of `name = literal` statements, as in `cmk-update-agent.cfg`.
///
/// Statements are separated by newlines or `;`; comments and blank lines are skipped. Names
/// follow Python's identifier rules; a name assigned twice keeps its first position and its
/// last value (like module globals). Nothing is evaluated: the right-hand sides must be
/// literals as accepted by [`parse`].
pub fn parse_assignments(text: &str) -> Result<Vec<(String, PyValue)>, LiteralError> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
        newline_ends: false,
    };
    let mut out: Vec<(String, PyValue)> = Vec::new();
    loop {
        // Between statements: blank lines, comments and `;`.
        p.newline_ends = false;
        p.skip_ws();
        while p.peek() == Some(';') {
            p.pos += 1;
            p.skip_ws();
        }
        p.newline_ends = true;
        let Some(c) = p.peek() else {
            return Ok(out);
        };
        if !(c.is_alphabetic() || c == '_') {
            return Err(p.err("expected `name = value`"));
        }
        let start = p.pos;
        while p.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            p.pos += 1;
        }
        let name: String = p.chars[start..p.pos].iter().collect();
        p.skip_ws();
        if p.peek() != Some('=') || p.peek_at(1) == Some('=') {
            return Err(p.err("expected `=`"));
        }
        p.pos += 1;
        let value = p.value()?;
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => out.push((name, value)),
        }
        // The statement must end here: a newline, `;`, a comment or the end of the text.
        p.skip_ws();
        if !matches!(p.peek(), None | Some('\n' | ';')) {
            return Err(p.err("unexpected text after the value (perhaps a missing comma?)"));
        }
    }
}

/// Where a statement of [`parse_statements`] assigns to or calls on: `name`, `name[key]`, or
/// `globals()` (as `name == "globals()"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The variable name (`globals()` for the call `globals()`).
    pub name: String,
    /// The subscript literal of `name[key]`, if any.
    pub key: Option<PyValue>,
}

/// One top-level statement of a Checkmk configuration file, as [`parse_statements`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    /// `target = literal`, or `target = literal + other` (Checkmk's rule files append the
    /// previous value that way; `plus` names `other`).
    Assign {
        /// What is assigned to.
        target: Target,
        /// The literal.
        value: PyValue,
        /// The variable added after the literal, if any.
        plus: Option<Target>,
    },
    /// `target += literal`.
    AugAssign {
        /// What is extended.
        target: Target,
        /// The literal.
        value: PyValue,
    },
    /// `target.method(literal, ...)`, e.g. `host_tags.update({...})`.
    Call {
        /// The object called on.
        target: Target,
        /// The method name.
        method: String,
        /// The literal arguments.
        args: Vec<PyValue>,
    },
    /// `target.method(literal, ...).method(literal, ...)`: a call on what a call returns, as
    /// Checkmk writes custom host macros
    /// (`extra_host_conf.setdefault('_X', []).extend([...])`).
    ChainedCall {
        /// The object the first call is made on.
        target: Target,
        /// The calls, in order (at least two).
        calls: Vec<MethodCall>,
    },
    /// A statement of another shape (`import os`, `if ...:`, an expression that is not a
    /// literal), skipped without being run.
    Skipped {
        /// The statement's first line.
        text: String,
        /// What the statement assigns to or calls on, when it starts like a statement this
        /// parser reads (`x['k'] = <not a literal>`): lets a caller refuse to skip a statement
        /// whose value it needs.
        target: Option<Target>,
        /// Why a statement that starts like one this parser reads was not read.
        error: Option<LiteralError>,
    },
}

/// One call of a [`StatementKind::ChainedCall`].
#[derive(Debug, Clone, PartialEq)]
pub struct MethodCall {
    /// The method name.
    pub method: String,
    /// The literal arguments.
    pub args: Vec<PyValue>,
}

/// A statement with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The 1-based line the statement starts on.
    pub line: usize,
    /// What it is.
    pub kind: StatementKind,
}

/// Parses the top-level statements of a Checkmk configuration file (`hosts.mk`, `rules.mk`,
/// `global.mk`) without running anything.
///
/// Assignments (`=`, `+=`, `= literal + name`) and method calls with literal arguments
/// (`x.update({...})`, `globals().setdefault('x', [])`, also chained:
/// `x.setdefault('k', []).extend([...])`) are read; statements of any other shape, including
/// assignments and calls whose values are expressions rather than literals, are returned as
/// [`StatementKind::Skipped`] for the caller to warn about. Only text that cannot be a Python
/// statement at all (a bracket or a string that is never closed) is an error with its line.
pub fn parse_statements(text: &str) -> Result<Vec<Statement>, LiteralError> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
        newline_ends: false,
    };
    let mut out = Vec::new();
    let mut line = 1;
    let mut counted = 0;
    loop {
        p.newline_ends = false;
        p.skip_ws();
        while p.peek() == Some(';') {
            p.pos += 1;
            p.skip_ws();
        }
        p.newline_ends = true;
        if p.peek().is_none() {
            return Ok(out);
        }
        line += p.chars[counted..p.pos]
            .iter()
            .filter(|&&c| c == '\n')
            .count();
        counted = p.pos;
        let start = p.pos;
        let parsed = match p.statement() {
            Ok(Some(kind)) => {
                p.skip_ws();
                if matches!(p.peek(), None | Some('\n' | ';')) {
                    Ok(Some(kind))
                } else {
                    Err(p.err("unexpected text after the statement (perhaps a missing comma?)"))
                }
            }
            other => other,
        };
        let kind = match parsed {
            Ok(Some(kind)) => kind,
            failed => {
                // Not a shape we read: skip the whole logical line, so that one statement
                // Checkmk (or a user) wrote in a shape we do not know never hides the rest
                // of the file. Only text whose brackets or strings never close is an error:
                // then we cannot tell where the statement ends.
                let error = failed.err();
                p.depth = 0;
                p.pos = start;
                let target = p.target().ok().flatten();
                p.depth = 0;
                p.pos = start;
                if !p.skip_logical_line() {
                    return Err(error.unwrap_or_else(|| {
                        p.pos = start;
                        p.err("a bracket or a string of this statement is never closed")
                    }));
                }
                let text: String = p.chars[start..p.pos].iter().collect();
                StatementKind::Skipped {
                    text: text.lines().next().unwrap_or_default().trim().to_string(),
                    target,
                    error,
                }
            }
        };
        out.push(Statement { line, kind });
    }
}

const KEYWORDS: &[&str] = &[
    "import", "from", "def", "class", "if", "elif", "else", "for", "while", "try", "except",
    "finally", "with", "return", "del", "pass", "raise", "global", "nonlocal", "assert", "lambda",
    "async", "await", "yield", "print", "exec",
];

const MAX_DEPTH: usize = 100;

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    /// Statement mode ([`parse_assignments`]): outside brackets a newline ends the statement.
    newline_ends: bool,
}

impl Parser {
    fn location(&self) -> (usize, usize) {
        let mut line = 1;
        let mut column = 1;
        for &c in &self.chars[..self.pos.min(self.chars.len())] {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        (line, column)
    }

    fn err(&self, message: impl Into<String>) -> LiteralError {
        let (line, column) = self.location();
        LiteralError {
            line,
            column,
            message: message.into(),
            not_literal: false,
        }
    }

    fn not_literal(&self, message: impl Into<String>) -> LiteralError {
        LiteralError {
            not_literal: true,
            ..self.err(message)
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    /// Skips whitespace, newlines, comments and backslash line continuations.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                '\n' if self.newline_ends && self.depth == 0 => break,
                ' ' | '\t' | '\n' | '\r' | '\x0c' => self.pos += 1,
                '#' => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                '\\' if matches!(self.peek_at(1), Some('\n')) => self.pos += 2,
                '\\' if matches!(self.peek_at(1), Some('\r')) => {
                    self.pos += 2;
                    if self.peek() == Some('\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn name(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.peek().is_some_and(|c| c.is_alphabetic() || c == '_') {
            return None;
        }
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        Some(self.chars[start..self.pos].iter().collect())
    }

    /// `name`, `name[literal]` or `globals()`; `None` when the text is not of that shape.
    fn target(&mut self) -> Result<Option<Target>, LiteralError> {
        let Some(mut name) = self.name() else {
            return Ok(None);
        };
        if KEYWORDS.contains(&name.as_str()) {
            return Ok(None);
        }
        if name == "globals" && self.peek() == Some('(') && self.peek_at(1) == Some(')') {
            self.pos += 2;
            name.push_str("()");
        }
        let mut key = None;
        if self.peek() == Some('[') {
            self.pos += 1;
            self.depth += 1;
            let k = self.value()?;
            self.skip_ws();
            if self.peek() != Some(']') {
                return Err(self.err("expected ']' after a subscript"));
            }
            self.pos += 1;
            self.depth -= 1;
            key = Some(k);
        }
        Ok(Some(Target { name, key }))
    }

    /// `.method(args)` at a `.`; `None` for other shapes.
    fn method_call(&mut self) -> Result<Option<MethodCall>, LiteralError> {
        self.pos += 1;
        let Some(method) = self.name() else {
            return Ok(None);
        };
        self.skip_ws();
        if self.peek() != Some('(') {
            return Ok(None);
        }
        self.pos += 1;
        self.depth += 1;
        let args = self.sequence(')')?;
        self.depth -= 1;
        Ok(Some(MethodCall { method, args }))
    }

    /// One statement of [`parse_statements`]; `None` for other shapes.
    fn statement(&mut self) -> Result<Option<StatementKind>, LiteralError> {
        let Some(target) = self.target()? else {
            return Ok(None);
        };
        self.skip_ws();
        match (self.peek(), self.peek_at(1)) {
            (Some('.'), _) => {
                let mut calls = Vec::new();
                while self.peek() == Some('.') {
                    let Some(call) = self.method_call()? else {
                        return Ok(None);
                    };
                    calls.push(call);
                    self.skip_ws();
                }
                if calls.len() > 1 {
                    return Ok(Some(StatementKind::ChainedCall { target, calls }));
                }
                let MethodCall { method, args } = calls.remove(0);
                Ok(Some(StatementKind::Call {
                    target,
                    method,
                    args,
                }))
            }
            (Some('+'), Some('=')) => {
                self.pos += 2;
                let value = self.value()?;
                Ok(Some(StatementKind::AugAssign { target, value }))
            }
            (Some('='), next) if next != Some('=') => {
                self.pos += 1;
                let value = self.value()?;
                self.skip_ws();
                let mut plus = None;
                if self.peek() == Some('+') {
                    self.pos += 1;
                    self.skip_ws();
                    match self.target()? {
                        Some(t) => plus = Some(t),
                        None => return Err(self.not_literal("expected a name after '+'")),
                    }
                }
                Ok(Some(StatementKind::Assign {
                    target,
                    value,
                    plus,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Skips a statement of unknown shape: to the end of its logical line, following open
    /// brackets, strings (brackets inside them do not count), comments and backslash
    /// continuations; an indented block's lines are separate statements. `false` when a
    /// bracket or a string is never closed, or a bracket closes that was not opened.
    fn skip_logical_line(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => return false,
                },
                '\n' if depth == 0 => return true,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                    continue;
                }
                '\\' => self.pos += 1,
                '\'' | '"' => {
                    let triple = self.peek_at(1) == Some(c) && self.peek_at(2) == Some(c);
                    self.pos += if triple { 3 } else { 1 };
                    loop {
                        match self.peek() {
                            None => return false,
                            Some('\\') => self.pos += 2,
                            Some('\n') if !triple => return false,
                            Some(q)
                                if q == c
                                    && (!triple
                                        || (self.peek_at(1) == Some(c)
                                            && self.peek_at(2) == Some(c))) =>
                            {
                                self.pos += if triple { 3 } else { 1 };
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
        depth == 0
    }

    fn value(&mut self) -> Result<PyValue, LiteralError> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end of text"));
        };
        match c {
            '{' | '[' | '(' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err("nested too deeply"));
                }
                let v = match c {
                    '{' => self.dict(),
                    '[' => self.list(),
                    _ => self.paren(),
                };
                self.depth -= 1;
                v
            }
            '\'' | '"' => self.strings(),
            '-' | '+' => {
                self.pos += 1;
                self.skip_ws();
                let v = self.value()?;
                let neg = c == '-';
                match v {
                    PyValue::Int(i) => {
                        if neg {
                            i.checked_neg()
                                .map(PyValue::Int)
                                .ok_or_else(|| self.err("integer out of range"))
                        } else {
                            Ok(PyValue::Int(i))
                        }
                    }
                    PyValue::Float(f) => Ok(PyValue::Float(if neg { -f } else { f })),
                    PyValue::Bool(b) => {
                        let i = i64::from(b);
                        Ok(PyValue::Int(if neg { -i } else { i }))
                    }
                    _ => Err(self.not_literal("a sign can only stand before a number")),
                }
            }
            '0'..='9' | '.' => self.number(),
            c if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_alphanumeric() || c == '_' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                // String prefixes: u, r, b, br, rb (any case).
                if matches!(self.peek(), Some('\'' | '"')) && is_string_prefix(&word) {
                    self.pos = start;
                    return self.strings();
                }
                match word.as_str() {
                    "None" => Ok(PyValue::None),
                    "True" => Ok(PyValue::Bool(true)),
                    "False" => Ok(PyValue::Bool(false)),
                    _ => {
                        self.pos = start;
                        Err(self.not_literal(format!(
                            "'{word}' is a name or an expression, not a literal value"
                        )))
                    }
                }
            }
            c => Err(self.err(format!("unexpected character {c:?}"))),
        }
    }

    fn dict(&mut self) -> Result<PyValue, LiteralError> {
        self.pos += 1; // {
        let mut items: Vec<(PyValue, PyValue)> = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(PyValue::Dict(items));
            }
            if self.peek() == Some('*') {
                return Err(self.not_literal("'**' unpacking is not a literal"));
            }
            let key = self.value()?;
            if matches!(key, PyValue::List(_) | PyValue::Dict(_)) {
                return Err(self.err(format!("unhashable dict key of type {}", key.type_name())));
            }
            self.skip_ws();
            match self.peek() {
                Some(':') => self.pos += 1,
                Some(',' | '}') if items.is_empty() => {
                    return Err(self.not_literal("sets are not supported in manifests"));
                }
                _ => {
                    return Err(
                        self.err("expected ':' after a dict key (perhaps a missing comma?)")
                    );
                }
            }
            let value = self.value()?;
            if let Some(slot) = items.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                items.push((key, value));
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => {
                    return Err(
                        self.err("expected ',' or '}' in a dict (perhaps a missing comma?)")
                    );
                }
            }
        }
    }

    fn list(&mut self) -> Result<PyValue, LiteralError> {
        self.pos += 1; // [
        let items = self.sequence(']')?;
        Ok(PyValue::List(items))
    }

    fn sequence(&mut self, close: char) -> Result<Vec<PyValue>, LiteralError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            if self.peek() == Some('*') {
                return Err(self.not_literal("'*' unpacking is not a literal"));
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(self.err(format!(
                        "expected ',' or '{close}' (perhaps a missing comma?)"
                    )));
                }
            }
        }
    }

    fn paren(&mut self) -> Result<PyValue, LiteralError> {
        self.pos += 1; // (
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(PyValue::Tuple(Vec::new()));
        }
        let first = self.value()?;
        self.skip_ws();
        match self.peek() {
            Some(')') => {
                self.pos += 1;
                Ok(first)
            }
            Some(',') => {
                self.pos += 1;
                let mut rest = self.sequence(')')?;
                rest.insert(0, first);
                Ok(PyValue::Tuple(rest))
            }
            _ => Err(self.err("expected ',' or ')' (perhaps a missing comma?)")),
        }
    }

    fn number(&mut self) -> Result<PyValue, LiteralError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let prev = if self.pos > start {
                self.chars[self.pos - 1]
            } else {
                ' '
            };
            if c.is_ascii_alphanumeric()
                || c == '_'
                || c == '.'
                || ((c == '+' || c == '-') && matches!(prev, 'e' | 'E') && !self.is_radix(start))
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        let raw: String = self.chars[start..self.pos].iter().collect();
        if raw.contains("__") || raw.ends_with('_') {
            return Err(self.err(format!("invalid number '{raw}'")));
        }
        let text = raw.replace('_', "");
        let lower = text.to_ascii_lowercase();
        if lower.ends_with('j') {
            return Err(self.not_literal(format!("complex number '{raw}' is not supported")));
        }
        let radix = match lower.get(..2) {
            Some("0x") => Some(16),
            Some("0o") => Some(8),
            Some("0b") => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            return i64::from_str_radix(&lower[2..], radix)
                .map(PyValue::Int)
                .map_err(|_| self.err(format!("invalid or too large integer '{raw}'")));
        }
        if lower.contains(['.', 'e']) {
            if !lower
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
            {
                return Err(self.err(format!("invalid number '{raw}'")));
            }
            return lower
                .parse::<f64>()
                .map(PyValue::Float)
                .map_err(|_| self.err(format!("invalid number '{raw}'")));
        }
        if !lower.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.err(format!("invalid number '{raw}'")));
        }
        if lower.len() > 1 && lower.starts_with('0') && lower.chars().any(|c| c != '0') {
            return Err(self.err(format!(
                "leading zeros in decimal integer literals are not permitted: '{raw}'"
            )));
        }
        lower
            .parse::<i64>()
            .map(PyValue::Int)
            .map_err(|_| self.err(format!("integer '{raw}' is too large")))
    }

    fn is_radix(&self, start: usize) -> bool {
        self.chars.get(start) == Some(&'0')
            && matches!(
                self.chars.get(start + 1),
                Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')
            )
    }

    /// One or more adjacent string literals (implicit concatenation).
    fn strings(&mut self) -> Result<PyValue, LiteralError> {
        let mut text: Option<String> = None;
        let mut bytes: Option<Vec<u8>> = None;
        loop {
            self.skip_ws();
            let start = self.pos;
            let mut prefix = String::new();
            while let Some(c) = self.peek() {
                if c.is_ascii_alphabetic() && prefix.len() < 3 {
                    prefix.push(c);
                    self.pos += 1;
                } else {
                    break;
                }
            }
            if !matches!(self.peek(), Some('\'' | '"')) || !is_string_prefix(&prefix) {
                self.pos = start;
                break;
            }
            let lower = prefix.to_ascii_lowercase();
            let raw = lower.contains('r');
            let is_bytes = lower.contains('b');
            let body = self.string_body(raw, is_bytes)?;
            match (is_bytes, &mut text, &mut bytes) {
                (false, Some(_), _) | (false, None, None) => {
                    text.get_or_insert_with(String::new).push_str(&body.0);
                }
                (true, None, Some(_)) | (true, None, None) => {
                    bytes
                        .get_or_insert_with(Vec::new)
                        .extend_from_slice(&body.1);
                }
                _ => {
                    self.pos = start;
                    return Err(self.err("cannot mix bytes and nonbytes literals"));
                }
            }
        }
        match (text, bytes) {
            (Some(t), None) => Ok(PyValue::Str(t)),
            (None, Some(b)) => Ok(PyValue::Bytes(b)),
            _ => Err(self.err("expected a string literal")),
        }
    }

    /// Reads a quoted body starting at the quote. Returns (text, bytes) - one is used.
    fn string_body(
        &mut self,
        raw: bool,
        is_bytes: bool,
    ) -> Result<(String, Vec<u8>), LiteralError> {
        let quote = self.chars[self.pos];
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        let open = self.pos;
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.pos = open;
                return Err(self.err("unterminated string literal"));
            };
            if c == quote {
                if !triple {
                    self.pos += 1;
                    break;
                }
                if self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote) {
                    self.pos += 3;
                    break;
                }
                out.push(c);
                self.pos += 1;
                continue;
            }
            if (c == '\n' || c == '\r') && !triple {
                self.pos = open;
                return Err(self.err("unterminated string literal (line break inside quotes)"));
            }
            if c == '\\' {
                let Some(next) = self.peek_at(1) else {
                    self.pos = open;
                    return Err(self.err("unterminated string literal"));
                };
                if raw {
                    if is_bytes && !next.is_ascii() {
                        return Err(self.err("bytes can only contain ASCII literal characters"));
                    }
                    out.push('\\');
                    out.push(next);
                    self.pos += 2;
                    continue;
                }
                self.pos += 2;
                match next {
                    '\n' => {}
                    '\r' => {
                        if self.peek() == Some('\n') {
                            self.pos += 1;
                        }
                    }
                    '\\' => out.push('\\'),
                    '\'' => out.push('\''),
                    '"' => out.push('"'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\x0b'),
                    '0'..='7' => {
                        let mut v = next.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match self.peek().and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    self.pos += 1;
                                }
                                None => break,
                            }
                        }
                        if is_bytes {
                            // Stored as a char < 0x100 and mapped back to a byte below.
                            out.push(char::from_u32(v & 0xff).unwrap_or('\0'));
                        } else {
                            out.push(char::from_u32(v).unwrap_or('\0'));
                        }
                    }
                    'x' => out.push(self.hex_escape(2)?),
                    'u' if !is_bytes => out.push(self.hex_escape(4)?),
                    'U' if !is_bytes => out.push(self.hex_escape(8)?),
                    'N' if !is_bytes => {
                        return Err(self.err("\\N{...} escapes are not supported"));
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                continue;
            }
            if is_bytes && !c.is_ascii() {
                return Err(self.err("bytes can only contain ASCII literal characters"));
            }
            out.push(c);
            self.pos += 1;
        }
        if is_bytes {
            // Escapes produce values up to 0xff; literal non-ASCII was rejected above.
            let bytes = out
                .chars()
                .map(|c| u8::try_from(c as u32).unwrap_or(0))
                .collect();
            Ok((String::new(), bytes))
        } else {
            Ok((out, Vec::new()))
        }
    }

    fn hex_escape(&mut self, n: usize) -> Result<char, LiteralError> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let Some(d) = self.peek().and_then(|c| c.to_digit(16)) else {
                return Err(self.err(format!(
                    "truncated \\x/\\u escape (expected {n} hex digits)"
                )));
            };
            v = v * 16 + d;
            self.pos += 1;
        }
        char::from_u32(v).ok_or_else(|| {
            self.err(format!(
                "escape \\u{v:x} is a lone surrogate or out of range; not supported"
            ))
        })
    }
}

fn is_string_prefix(p: &str) -> bool {
    matches!(
        p.to_ascii_lowercase().as_str(),
        "" | "u" | "r" | "b" | "br" | "rb"
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn statements_of_site_files() {
        let text = "# Created by HostStorage\n\nall_hosts += ['zr']\n\nhost_tags.update({'zr': {'site': 'git'}})\nimport os\nagent_config.setdefault('cmk_update_agent', [])\n\nagent_config['cmk_update_agent'] = [\n{'id': 'a', 'value': {'activated': True}},\n] + agent_config['cmk_update_agent']\nglobals().setdefault('x', [])\nflag = True; n = 3\n";
        let st = parse_statements(text).unwrap();
        let kinds: Vec<(usize, String)> = st
            .iter()
            .map(|s| {
                let k = match &s.kind {
                    StatementKind::Assign { target, plus, .. } => {
                        format!(
                            "assign {} {:?} plus={}",
                            target.name,
                            target.key,
                            plus.is_some()
                        )
                    }
                    StatementKind::AugAssign { target, value } => {
                        format!("aug {} {}", target.name, value.repr())
                    }
                    StatementKind::Call {
                        target,
                        method,
                        args,
                    } => {
                        format!("call {}.{} {}", target.name, method, args.len())
                    }
                    StatementKind::ChainedCall { target, calls } => {
                        format!("chain {} {}", target.name, calls.len())
                    }
                    StatementKind::Skipped { text, .. } => format!("skip {text}"),
                };
                (s.line, k)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (3, "aug all_hosts ['zr']".to_string()),
                (5, "call host_tags.update 1".to_string()),
                (6, "skip import os".to_string()),
                (7, "call agent_config.setdefault 2".to_string()),
                (
                    9,
                    "assign agent_config Some(Str(\"cmk_update_agent\")) plus=true".to_string()
                ),
                (12, "call globals().setdefault 2".to_string()),
                (13, "assign flag None plus=false".to_string()),
                (13, "assign n None plus=false".to_string()),
            ]
        );
    }

    #[test]
    fn non_finite_floats_are_found_at_any_depth() {
        assert!(
            parse("{'a': [1.5, (2, {'b': 1e308})]}")
                .unwrap()
                .floats_are_finite()
        );
        let deep = parse("{'a': [1.5, (2, {'b': 1e999})]}").unwrap();
        assert!(!deep.floats_are_finite());
        assert!(deep.pformat().contains("inf"), "{}", deep.pformat());
        assert!(!parse("{-1e999: 0}").unwrap().floats_are_finite());
    }

    #[test]
    fn with_sorted_dicts_sorts_every_dict_as_pprint_writes_it() {
        let text = "{'z': [{'b': 1, 'a': (2, {'y': 0, 'x': 0})}], 'c': {}}";
        let value = parse(text).unwrap();
        let sorted = value.with_sorted_dicts();
        assert_eq!(sorted.repr(), value.repr(), "repr sorts already");
        assert_eq!(parse(&value.pformat()).unwrap(), sorted);
        assert_ne!(sorted, value);
        assert_eq!(sorted.with_sorted_dicts(), sorted);
    }

    #[test]
    fn statement_errors_name_the_line() {
        let err = parse_statements("a = 1\nb = [1, 2\nc = 3\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let err = parse_statements("a = 1\nb = 'x\nc = 3\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse_statements("a = 1\nb = (1))\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    fn skipped(st: &Statement) -> (Option<&str>, bool) {
        match &st.kind {
            StatementKind::Skipped { target, error, .. } => (
                target.as_ref().map(|t| t.name.as_str()),
                error.as_ref().is_some_and(|e| e.not_literal),
            ),
            other => panic!("line {}: not skipped: {other:?}", st.line),
        }
    }

    #[test]
    fn expressions_are_skipped_with_their_target_and_the_rest_is_read() {
        // 1.5-era hosts.mk and 2.0/2.1 folder contact groups: not literals, but the
        // statements after them must still be read.
        let text = "all_hosts += [\n  \"web01|lan|/\" + FOLDER_PATH + \"/\",\n]\n\
                    host_contactgroups.insert(0, {'value': ['all'], 'condition': \
                    {'host_folder': '/%s/' % FOLDER_PATH}})\n\
                    b = foo(1)\n\
                    x = {'a': ')'} {'b': 1}  # ( not closed in a comment\n\
                    host_tags.update({'web01': {'site': 'cmk'}})\n";
        let st = parse_statements(text).unwrap();
        let lines: Vec<usize> = st.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 4, 5, 6, 7]);
        assert_eq!(skipped(&st[0]), (Some("all_hosts"), false));
        assert_eq!(skipped(&st[1]), (Some("host_contactgroups"), false));
        assert_eq!(skipped(&st[2]), (Some("b"), true));
        assert_eq!(skipped(&st[3]), (Some("x"), false));
        assert!(matches!(&st[4].kind, StatementKind::Call { method, .. } if method == "update"));
    }

    #[test]
    fn chained_calls_are_read() {
        // HostStorage writes custom host macros this way (every version).
        let text = "extra_host_conf.setdefault('_X', []).extend(\n  [('v', ['web01'])])\n\
                    explicit_host_conf.setdefault('alias', {})\n";
        let st = parse_statements(text).unwrap();
        let StatementKind::ChainedCall { target, calls } = &st[0].kind else {
            panic!("{:?}", st[0]);
        };
        assert_eq!(target.name, "extra_host_conf");
        let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(methods, ["setdefault", "extend"]);
        assert_eq!(
            calls[1].args[0].repr(),
            "[('v', ['web01'])]",
            "the extended value"
        );
        assert_eq!(st[1].line, 3);
        assert!(
            matches!(&st[1].kind, StatementKind::Call { method, .. } if method == "setdefault")
        );
    }
    use super::*;

    fn s(x: &str) -> PyValue {
        PyValue::Str(x.into())
    }

    #[test]
    fn parses_python2_and_python3_forms() {
        let v = parse("{u'a': u\"b\" 'c', 'n': None, 't': (1, 2.5, -3), 'l': [True, False,]}\n")
            .unwrap();
        assert_eq!(
            v,
            PyValue::Dict(vec![
                (s("a"), s("bc")),
                (s("n"), PyValue::None),
                (
                    s("t"),
                    PyValue::Tuple(vec![PyValue::Int(1), PyValue::Float(2.5), PyValue::Int(-3)])
                ),
                (
                    s("l"),
                    PyValue::List(vec![PyValue::Bool(true), PyValue::Bool(false)])
                ),
            ])
        );
    }

    #[test]
    fn escapes_and_prefixes() {
        assert_eq!(
            parse(r"'a\nb\t\x41\u00e9\101\q'").unwrap(),
            s("a\nb\tAéA\\q")
        );
        assert_eq!(parse(r"r'a\nb'").unwrap(), s("a\\nb"));
        assert_eq!(parse(r"b'a\x00'").unwrap(), PyValue::Bytes(vec![b'a', 0]));
        assert_eq!(parse("'''x\n'y'\n'''").unwrap(), s("x\n'y'\n"));
        assert_eq!(
            parse("{'a': '''x\r\ny'''}\r\n").unwrap(),
            parse("{'a': 'x\\ny'}").unwrap()
        );
        assert_eq!(parse("'x\\\r\ny'").unwrap(), s("xy"));
        assert!(parse("'a\rb'").is_err());
        assert!(parse("\u{feff}{}").is_err());
        assert!(parse("{}\0").is_err());
        assert!(parse("b'a' 'b'").is_err());
    }

    #[test]
    fn rejects_non_literals_and_syntax_errors() {
        let e = parse("{'a': os.system('x')}").unwrap_err();
        assert!(e.not_literal, "{e:?}");
        let e = parse("{'a': 'b' 'c': 'd'}").unwrap_err();
        assert!(!e.not_literal);
        assert!(e.message.contains("comma"), "{e:?}");
        assert!(parse("{'a': 'b'").is_err());
        assert!(parse("'abc").is_err());
        assert!(parse("").is_err());
        assert!(parse("[1] [2]").is_err());
        assert!(parse("007").is_err());
    }

    #[test]
    fn duplicate_keys_keep_first_position_and_last_value() {
        let v = parse("{'a': 1, 'b': 2, 'a': 3}").unwrap();
        assert_eq!(
            v,
            PyValue::Dict(vec![(s("a"), PyValue::Int(3)), (s("b"), PyValue::Int(2))])
        );
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(s("it's").repr(), "\"it's\"");
        assert_eq!(s("it's \"x\"").repr(), "'it\\'s \"x\"'");
        assert_eq!(
            s("a\u{a0}b\u{200b}\u{1F600}\x7f").repr(),
            "'a\\xa0b\\u200b\u{1F600}\\x7f'"
        );
        assert_eq!(repr_float(1e16), "1e+16");
        assert_eq!(repr_float(1.5e-5), "1.5e-05");
        assert_eq!(repr_float(123.0), "123.0");
        assert_eq!(repr_float(0.0001), "0.0001");
        assert_eq!(repr_float(1234567890123456.7), "1234567890123456.8");
        assert_eq!(PyValue::Tuple(vec![PyValue::Int(1)]).repr(), "(1,)");
    }

    #[test]
    fn pformat_splits_long_strings_like_pprint() {
        let v = PyValue::Dict(vec![(
            s("title"),
            s("Cisco stack extras (stackring, catalyst state, distributed stack ports)"),
        )]);
        assert_eq!(
            v.pformat(),
            "{'title': 'Cisco stack extras (stackring, catalyst state, distributed stack '\n          'ports)'}"
        );
    }

    #[test]
    fn splitlines_and_words() {
        assert_eq!(
            split_lines_keep_ends("a\r\nb\nc"),
            vec!["a\r\n", "b\n", "c"]
        );
        assert_eq!(word_space_parts("ab  cd e"), vec!["ab  ", "cd ", "e"]);
        assert_eq!(word_space_parts("  x"), vec!["  ", "x"]);
    }

    #[test]
    fn assignments_comments_and_separators() {
        let text = "# Created by the bakery\nserver = \"cmk.example\"\nsite = 'mysite' # comment\n\
                    interval = 600; x = 1\nproxy = {'server': 'p',\n  'port': 3128}\nx = 2\n";
        let v = parse_assignments(text).unwrap();
        assert_eq!(
            parse_assignments("a = 'x' # c\n'y'\n").unwrap_err().message,
            "expected `name = value`"
        );
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["server", "site", "interval", "x", "proxy"]);
        assert_eq!(v[0].1, s("cmk.example"));
        assert_eq!(v[3].1, PyValue::Int(2));
        assert_eq!(parse_assignments("").unwrap(), vec![]);
    }

    #[test]
    fn assignments_reject_code() {
        let e = parse_assignments("server = __import__('os')").unwrap_err();
        assert!(e.not_literal, "{e:?}");
        assert!(parse_assignments("a = 1 b = 2").is_err());
        assert!(parse_assignments("a == 1").is_err());
        assert!(parse_assignments("1 = 2").is_err());
        assert!(parse_assignments("a = {'x': 1").is_err());
    }
}
