//! The `xl.cfg` parser: Xen's domain configuration syntax, read as libxlu reads it.
//!
//! Two layers, as in Xen:
//! - [`parse`] is libxlu's lexer and grammar (`tools/libs/util/libxlu_cfg_{l.l,y.y}.c`):
//!   `KEY = VALUE` / `KEY += VALUE` statements separated by newlines or `;`, values that are
//!   quoted strings, numbers or (nested) lists, `#` comments, newlines allowed inside lists.
//!   It produces a [`Config`]: the raw settings, later ones overriding earlier ones.
//! - [`DomainConfig::from_config`] is xl's `parse_config_data` (`tools/xl/xl_parse.c`) for
//!   the keys this toolstack supports, with xl's defaults and messages.
//!
//! Errors and warnings read as libxlu/xl print them, e.g.
//! `web.cfg:3: config parsing error near `]': syntax error, unexpected ']', expecting
//! STRING or NUMBER or '['`. They were checked against libxlu 4.17 itself (built on the
//! host from Xen's pre-generated parser). One deliberate difference: for an unexpected end
//! of line libxlu names the line *before* it (a `yylineno` off-by-one); we name the line
//! the statement is on.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A value: libxlu keeps numbers as their text, exactly like strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A quoted string (unescaped) or a number's text.
    Atom(String),
    /// `[ VALUE, ... ]`, possibly nested.
    List(Vec<Value>),
}

/// How a setting was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `KEY = VALUE`
    Assign,
    /// `KEY += VALUE`: appended to the previous value of `KEY`.
    Add,
}

/// One `KEY = VALUE` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub name: String,
    /// The value, after `+=` concatenation.
    pub value: Value,
    /// How it was written.
    pub op: Op,
    /// The line (1-based) of the value.
    pub line: u32,
}

/// A parsed configuration: every setting in file order. Lookups take the last one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The name used in messages (`web.cfg`, `command line`...).
    pub source: String,
    /// The settings, in order.
    pub settings: Vec<Setting>,
}

/// One message of a failed parse: `SOURCE:LINE: config parsing error near `TEXT': MSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: u32,
    /// The offending text, or `None` for an end of line (`<newline>`).
    pub near: Option<String>,
    /// What is wrong.
    pub msg: String,
}

/// A failed parse: every error libxlu would report, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The name used in messages.
    pub source: String,
    /// The errors, at least one.
    pub errors: Vec<Diagnostic>,
    /// The text used Python-only syntax (`+ - . ( ) :` outside strings): xl then adds its
    /// "looks like it contains Python code" warning.
    pub likely_python: bool,
}

impl fmt::Display for ParseError {
    /// The text xl prints on stderr, one line each, without the final
    /// `Failed to parse config: Invalid argument` (see [`ParseError::XL_TRAILER`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.errors {
            write!(f, "{}:{}: config parsing error near ", self.source, d.line)?;
            match &d.near {
                Some(t) if !t.is_empty() => write!(f, "`{t}'")?,
                Some(_) => f.write_str("`'")?,
                None => f.write_str("<newline>")?,
            }
            writeln!(f, ": {}", d.msg)?;
        }
        if self.likely_python {
            f.write_str(
                "warning: Config file looks like it contains Python code.\n\
                 warning:  Arbitrary Python is no longer supported.\n\
                 warning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n",
            )?;
        }
        Ok(())
    }
}

impl ParseError {
    /// The line xl prints after the parser's own messages.
    pub const XL_TRAILER: &'static str = "Failed to parse config: Invalid argument\n";
}

// ---------------------------------------------------------------------------------------
// Lexer (libxlu_cfg_l.l)

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Number(String),
    Newline,
    AddOp,
    Eq,
    Semi,
    LBracket,
    RBracket,
    Comma,
    End,
}

impl Tok {
    /// Bison's name for the token in "unexpected X".
    fn bison_name(&self) -> &'static str {
        match self {
            Tok::Ident(_) => "IDENT",
            Tok::Str(_) => "STRING",
            Tok::Number(_) => "NUMBER",
            Tok::Newline => "NEWLINE",
            Tok::AddOp => "+=",
            Tok::Eq => "'='",
            Tok::Semi => "';'",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::Comma => "','",
            Tok::End => "$end",
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Line of the token (for a newline: the line it ends).
    line: u32,
    /// The token's text as flex's `yytext` (for "near `...'"); `None` for a newline.
    text: Option<String>,
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    line: u32,
    errors: Vec<Diagnostic>,
    lexerr_line: u32,
    likely_python: bool,
    /// `yytext` at the end of input.
    end_text: String,
    /// Line of the last token returned.
    last_tok_line: u32,
    /// Index of the last newline: a `#` comment needs one after it.
    last_newline: Option<usize>,
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            pos: 0,
            line: 1,
            errors: Vec::new(),
            lexerr_line: 0,
            likely_python: false,
            last_tok_line: 1,
            end_text: String::new(),
            last_newline: s.iter().rposition(|c| *c == b'\n'),
        }
    }

    fn peek(&self, off: usize) -> Option<u8> {
        self.s.get(self.pos + off).copied()
    }

    fn lexical_error(&mut self, line: u32, near: String, msg: &str) {
        // libxlu reports one error per line at most.
        if line > self.lexerr_line {
            self.errors.push(Diagnostic {
                line,
                near: Some(near),
                msg: msg.to_string(),
            });
        }
        self.lexerr_line = line;
    }

    /// The length of a quoted string starting at `pos` (quote included at both ends), if
    /// it is terminated on this line.
    fn quoted_len(&self, q: u8) -> Option<usize> {
        let mut i = 1;
        loop {
            match self.peek(i)? {
                b'\n' => return None,
                b'\\' => match self.peek(i + 1)? {
                    b'\n' => return None,
                    _ => i += 2,
                },
                c if c == q => return Some(i + 1),
                _ => i += 1,
            }
        }
    }

    fn next(&mut self) -> Token {
        let t = self.next_raw();
        self.last_tok_line = t.line;
        t
    }

    fn next_raw(&mut self) -> Token {
        loop {
            let Some(c) = self.peek(0) else {
                // bison reports `$end` at the line of the last token.
                return Token {
                    tok: Tok::End,
                    line: self.last_tok_line,
                    text: Some(self.end_text.clone()),
                };
            };
            let start = self.pos;
            let line = self.line;
            match c {
                b' ' | b'\t' => self.pos += 1,
                b'a'..=b'z' => {
                    let mut n = 1;
                    while matches!(self.peek(n), Some(b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_')) {
                        n += 1;
                    }
                    self.pos += n;
                    let t = text_of(&self.s[start..self.pos]);
                    return Token {
                        tok: Tok::Ident(t.clone()),
                        line,
                        text: Some(t),
                    };
                }
                b'0'..=b'9' => {
                    let mut n = 1;
                    while matches!(self.peek(n), Some(b'0'..=b'9' | b'a'..=b'f' | b'x')) {
                        n += 1;
                    }
                    self.pos += n;
                    let t = text_of(&self.s[start..self.pos]);
                    return Token {
                        tok: Tok::Number(t.clone()),
                        line,
                        text: Some(t),
                    };
                }
                b',' => return self.punct(Tok::Comma, 1),
                b'[' => return self.punct(Tok::LBracket, 1),
                b']' => return self.punct(Tok::RBracket, 1),
                b';' => return self.punct(Tok::Semi, 1),
                b'=' => return self.punct(Tok::Eq, 1),
                b'+' if self.peek(1) == Some(b'=') => return self.punct(Tok::AddOp, 2),
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    return Token {
                        tok: Tok::Newline,
                        line,
                        text: None,
                    };
                }
                b'#' if self.last_newline.is_some_and(|n| n > start) => {
                    // `\#.*\n`: a comment is only a comment up to a newline.
                    while self.peek(0) != Some(b'\n') {
                        self.pos += 1;
                    }
                    // An error at this newline quotes the comment, as libxlu does.
                    let comment = text_of(&self.s[start..self.pos]);
                    self.pos += 1;
                    self.line += 1;
                    return Token {
                        tok: Tok::Newline,
                        line,
                        text: Some(comment),
                    };
                }
                b'\'' | b'"' if self.quoted_len(c).is_some() => {
                    let n = self.quoted_len(c).unwrap_or(2);
                    self.pos += n;
                    let raw = &self.s[start..self.pos];
                    let t = text_of(raw);
                    let v = self.dequote(raw, line, &t);
                    return Token {
                        tok: Tok::Str(v),
                        line,
                        text: Some(t),
                    };
                }
                _ => {
                    // A lexical error: the bad character and what follows up to a blank.
                    if matches!(c, b'+' | b'-' | b'.' | b'(' | b')' | b':') {
                        self.likely_python = true;
                    }
                    let mut n = 1;
                    while let Some(d) = self.peek(n) {
                        if d == b' ' || d == b'\t' || d == b'\n' {
                            break;
                        }
                        n += 1;
                    }
                    let near = text_of(&self.s[start..start + n]);
                    self.pos += n;
                    if n == 1 && self.peek(0).is_none() {
                        // flex hits the end of input in its error state with nothing more
                        // matched: no error is reported, and `$end` carries this text.
                        self.end_text = near;
                        continue;
                    }
                    if n == 1 && self.peek(0) == Some(b'\n') {
                        // flex's `<lexerr>\n` rule: libxlu checks and records the error
                        // against the next line (and prints this one).
                        if line + 1 > self.lexerr_line {
                            self.errors.push(Diagnostic {
                                line,
                                near: Some(near),
                                msg: "lexical error".into(),
                            });
                        }
                        self.lexerr_line = line + 1;
                    } else {
                        self.lexical_error(line, near, "lexical error");
                    }
                    if n == 1 {
                        // flex prefers the longer `[ \t]` / `\n` match after a lone character.
                        match self.peek(0) {
                            Some(b' ' | b'\t') => self.pos += 1,
                            Some(b'\n') => {
                                self.pos += 1;
                                self.line += 1;
                                return Token {
                                    tok: Tok::Newline,
                                    line,
                                    text: None,
                                };
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    fn punct(&mut self, tok: Tok, n: usize) -> Token {
        let start = self.pos;
        self.pos += n;
        Token {
            tok,
            line: self.line,
            text: Some(text_of(&self.s[start..self.pos])),
        }
    }

    /// `xlu__cfgl_dequote`, with its numeric-escape behaviour: `\x..` is always refused and
    /// `\NNN` is consumed (as decimal, as libxlu does) but produces nothing.
    fn dequote(&mut self, raw: &[u8], line: u32, text: &str) -> String {
        if !self.errors.is_empty() {
            // libxlu stops building values (and checking escapes) after an error.
            return String::new();
        }
        let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or(&[]);
        let mut out = Vec::with_capacity(inner.len());
        let mut i = 0;
        while let Some(&c) = inner.get(i) {
            i += 1;
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let Some(&nc) = inner.get(i) else { break };
            i += 1;
            match nc {
                b'"' | b'\'' | b'\\' => out.push(nc),
                b'a' => out.push(0x07),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(0x0b),
                b'x' => {
                    self.lexical_error(
                        line,
                        text.to_string(),
                        "invalid digit after backslash hexnumerical character escape in quoted string",
                    );
                    break;
                }
                b'0'..=b'7' => {
                    // strtoul(base 10) over at most 3 following bytes (closing quote included).
                    let window = raw.get(1 + i..(1 + i + 3).min(raw.len())).unwrap_or(&[]);
                    let used = strtoul_dec_len(window);
                    if used <= 1 {
                        self.lexical_error(
                            line,
                            text.to_string(),
                            "invalid digit after backslash octalnumerical character escape in quoted string",
                        );
                        break;
                    }
                    i += used;
                }
                _ => {
                    self.lexical_error(
                        line,
                        text.to_string(),
                        "invalid character after backlash in quoted string",
                    );
                    break;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// How many bytes `strtoul(s, &ep, 10)` consumes (0 if no conversion).
fn strtoul_dec_len(s: &[u8]) -> usize {
    let mut i = 0;
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) {
        i += 1;
    }
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits_start = i;
    while matches!(s.get(i), Some(b'0'..=b'9')) {
        i += 1;
    }
    if i == digits_start {
        0
    } else {
        i
    }
}

// ---------------------------------------------------------------------------------------
// Parser (libxlu_cfg_y.y), with bison's error reporting and recovery.

/// Where a syntax error was detected, after bison's default reductions.
#[derive(Clone, Copy)]
enum Ctx {
    StmtStart,
    AfterIdent,
    ValueStart,
    InList,
    AfterAssignment,
}

impl Ctx {
    fn expecting(self) -> &'static str {
        match self {
            Ctx::StmtStart => "$end or IDENT or NEWLINE or ';'",
            Ctx::AfterIdent => "+= or '='",
            Ctx::ValueStart => "STRING or NUMBER or '['",
            Ctx::InList => "']'",
            Ctx::AfterAssignment => "$end",
        }
    }
}

/// Lists nested deeper than this are refused (libxlu has no limit but a C stack).
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    lex: Lexer<'a>,
    look: Token,
    /// bison's `yyerrstatus`.
    errstatus: u8,
    /// The last token shifted (its text and line), for messages about a whole value.
    prev: Option<(Option<String>, u32)>,
    settings: Vec<Setting>,
    fatal: bool,
}

enum Flow {
    Ok,
    /// A syntax error was handled; resume at statement level.
    Recovered,
    /// Parsing stops.
    Abort,
}

impl<'a> Parser<'a> {
    fn shift(&mut self) -> Token {
        let next = self.lex.next();
        self.errstatus = self.errstatus.saturating_sub(1);
        let t = core::mem::replace(&mut self.look, next);
        self.prev = Some((t.text.clone(), t.line));
        t
    }

    fn discard(&mut self) {
        self.look = self.lex.next();
    }

    fn report(&mut self, ctx: Ctx) {
        let t = &self.look;
        let msg = format!(
            "syntax error, unexpected {}, expecting {}",
            t.tok.bison_name(),
            ctx.expecting()
        );
        // yyerror is silent on a line that already had a lexical error.
        if self.errstatus == 0 && t.line > self.lex.lexerr_line {
            let near = t
                .text
                .as_ref()
                .map(|s| String::from(s.trim_end_matches([' ', '\t'])));
            self.lex.errors.push(Diagnostic {
                line: t.line,
                near,
                msg,
            });
        }
    }

    /// bison's error recovery: pop to the statement level, then drop tokens up to a newline.
    fn error(&mut self, ctx: Ctx) -> Flow {
        self.fatal = true;
        self.report(ctx);
        if let Ctx::AfterAssignment = ctx {
            // Only `file` is left on the stack: nothing can shift `error`.
            return Flow::Abort;
        }
        if self.errstatus == 3 {
            if self.look.tok == Tok::End {
                return Flow::Abort;
            }
            self.discard();
        }
        self.errstatus = 3;
        loop {
            match self.look.tok {
                Tok::Newline => {
                    self.shift();
                    return Flow::Recovered;
                }
                Tok::End => return Flow::Abort,
                _ => self.discard(),
            }
        }
    }

    fn skip_newlines(&mut self) {
        while self.look.tok == Tok::Newline {
            self.shift();
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Flow> {
        match self.look.tok.clone() {
            Tok::Str(s) | Tok::Number(s) => {
                self.shift();
                Ok(Value::Atom(s))
            }
            Tok::LBracket if depth < MAX_DEPTH => {
                self.shift();
                self.skip_newlines();
                let mut items = Vec::new();
                loop {
                    match self.look.tok {
                        Tok::RBracket => {
                            self.shift();
                            return Ok(Value::List(items));
                        }
                        Tok::Str(_) | Tok::Number(_) | Tok::LBracket => {
                            items.push(self.value(depth + 1)?);
                            self.skip_newlines();
                            match self.look.tok {
                                Tok::Comma => {
                                    self.shift();
                                    self.skip_newlines();
                                }
                                Tok::RBracket => {}
                                _ => return Err(self.error(Ctx::InList)),
                            }
                        }
                        _ => return Err(self.error(Ctx::InList)),
                    }
                }
            }
            Tok::LBracket => {
                self.fatal = true;
                self.lex.errors.push(Diagnostic {
                    line: self.look.line,
                    near: Some("[".into()),
                    msg: "lists nested too deeply".into(),
                });
                Err(Flow::Abort)
            }
            _ => Err(self.error(if depth == 0 {
                Ctx::ValueStart
            } else {
                Ctx::InList
            })),
        }
    }

    fn store(&mut self, name: String, op: Op, mut value: Value, line: u32) -> Flow {
        if op == Op::Add {
            if let Some(prev) = self.settings.iter().rev().find(|s| s.name == name) {
                match (&prev.value, &mut value) {
                    (Value::Atom(p), Value::Atom(v)) => {
                        let mut s = p.clone();
                        s.push_str(v);
                        *v = s;
                    }
                    (Value::List(p), Value::List(v)) => {
                        let mut l = p.clone();
                        l.append(v);
                        *v = l;
                    }
                    _ => {
                        let (near, line) = self.prev.clone().unwrap_or((None, self.lex.line));
                        self.fatal = true;
                        if line > self.lex.lexerr_line {
                            self.lex.errors.push(Diagnostic {
                                line,
                                near,
                                msg: "can't add [list] to \"string\" or vice versa".into(),
                            });
                        }
                        self.lex.lexerr_line = line;
                        return Flow::Abort;
                    }
                }
            }
        }
        self.settings.push(Setting {
            name,
            value,
            op,
            line,
        });
        Flow::Ok
    }

    fn file(&mut self) {
        loop {
            match self.look.tok.clone() {
                Tok::End => return,
                Tok::Newline | Tok::Semi => {
                    self.shift();
                }
                Tok::Ident(name) => {
                    self.shift();
                    let op = match self.look.tok {
                        Tok::Eq => Op::Assign,
                        Tok::AddOp => Op::Add,
                        _ => match self.error(Ctx::AfterIdent) {
                            Flow::Abort => return,
                            _ => continue,
                        },
                    };
                    self.shift();
                    let line = self.look.line;
                    let value = match self.value(0) {
                        Ok(v) => v,
                        Err(Flow::Abort) => return,
                        Err(_) => continue,
                    };
                    if let Flow::Abort = self.store(name, op, value, line) {
                        return;
                    }
                    match self.look.tok {
                        Tok::Newline | Tok::Semi => {
                            self.shift();
                        }
                        Tok::End => return,
                        _ => {
                            self.error(Ctx::AfterAssignment);
                            return;
                        }
                    }
                }
                _ => {
                    if let Flow::Abort = self.error(Ctx::StmtStart) {
                        return;
                    }
                }
            }
        }
    }
}

/// Parses `xl.cfg` text. `source` names it in messages (xl uses the file's path).
pub fn parse(source: &str, text: &[u8]) -> Result<Config, ParseError> {
    let mut lex = Lexer::new(text);
    let look = lex.next();
    let mut p = Parser {
        lex,
        look,
        errstatus: 0,
        prev: None,
        settings: Vec::new(),
        fatal: false,
    };
    p.file();
    // Lexical and syntax errors, in the order libxlu prints them.
    let mut errors = p.lex.errors;
    let fatal = p.fatal || !errors.is_empty();
    if fatal {
        if errors.is_empty() {
            errors.push(Diagnostic {
                line: p.look.line,
                near: None,
                msg: "syntax error".into(),
            });
        }
        return Err(ParseError {
            source: source.into(),
            errors,
            likely_python: p.lex.likely_python,
        });
    }
    Ok(Config {
        source: source.into(),
        settings: p.settings,
    })
}

/// Parses a config file followed by `KEY=VALUE` overrides from the command line, as
/// `xl create FILE KEY=VALUE...` does: the overrides are appended to the file's text
/// (after a newline), so they win, and errors in them name lines past the file's end.
pub fn parse_with_overrides(
    source: &str,
    text: &[u8],
    overrides: &[&str],
) -> Result<Config, ParseError> {
    if overrides.iter().all(|o| o.is_empty()) {
        return parse(source, text);
    }
    let mut all = Vec::with_capacity(text.len() + 64);
    all.extend_from_slice(text);
    all.push(b'\n');
    for o in overrides {
        all.extend_from_slice(o.as_bytes());
        all.push(b'\n');
    }
    parse(source, &all)
}

// ---------------------------------------------------------------------------------------
// Typed access (libxlu_cfg.c's xlu_cfg_get_*), with its warnings.

/// Why a typed lookup gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// The key is not set (`ESRCH`).
    Missing,
    /// The key is set but of the wrong kind (`EINVAL`/`ERANGE`); the warning says why.
    Invalid(String),
}

impl Config {
    /// The last setting of `name`.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }

    /// `xlu_cfg_get_string`.
    pub fn get_string(&self, name: &str) -> Result<&str, GetError> {
        let set = self.get(name).ok_or(GetError::Missing)?;
        match &set.value {
            Value::Atom(s) => Ok(s),
            Value::List(_) => Err(GetError::Invalid(format!(
                "{}:{}: warning: parameter `{}' is a list but should be a single value",
                self.source, set.line, name
            ))),
        }
    }

    /// `xlu_cfg_get_long`: C `strtol(.., 0)` (decimal, `0` octal, `0x` hex).
    pub fn get_long(&self, name: &str) -> Result<i64, GetError> {
        let set = self.get(name).ok_or(GetError::Missing)?;
        let Value::Atom(s) = &set.value else {
            return Err(GetError::Invalid(format!(
                "{}:{}: warning: parameter `{}' is a list but should be a single value",
                self.source, set.line, name
            )));
        };
        if set.op == Op::Add {
            return Err(GetError::Invalid(format!(
                "{}:{}: warning: can't use += with numbers for parameter `{}'",
                self.source, set.line, name
            )));
        }
        match strtol0(s) {
            Some(Ok(v)) => Ok(v),
            Some(Err(())) => Err(GetError::Invalid(format!(
                "{}:{}: warning: parameter `{}' could not be parsed as a number: Numerical result out of range",
                self.source, set.line, name
            ))),
            None => Err(GetError::Invalid(format!(
                "{}:{}: warning: parameter `{}' is not a valid number",
                self.source, set.line, name
            ))),
        }
    }

    /// `xlu_cfg_get_list`: the items of a list setting.
    pub fn get_list(&self, name: &str) -> Result<&[Value], GetError> {
        let set = self.get(name).ok_or(GetError::Missing)?;
        match &set.value {
            Value::List(l) => Ok(l),
            Value::Atom(_) => Err(GetError::Invalid(format!(
                "{}:{}: warning: parameter `{}' is a single value but should be a list",
                self.source, set.line, name
            ))),
        }
    }
}

/// C's `strtol(s, &ep, 0)` requiring the whole string: `None` if not a number,
/// `Some(Err)` on overflow.
fn strtol0(s: &str) -> Option<Result<i64, ()>> {
    let b = s.as_bytes();
    let mut i = 0;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let (radix, start) = match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(b'0'), Some(b'x' | b'X'), Some(c)) if c.is_ascii_hexdigit() => (16, i + 2),
        (Some(b'0'), _, _) => (8, i),
        _ => (10, i),
    };
    let digits = b.get(start..)?;
    if digits.is_empty() || !digits.iter().all(|c| (*c as char).is_digit(radix)) {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits {
        let d = (*c as char).to_digit(radix)?;
        v = v * i128::from(radix) + i128::from(d);
        if v > i128::from(i64::MAX) + 1 {
            return Some(Err(()));
        }
    }
    let v = if neg { -v } else { v };
    Some(i64::try_from(v).map_err(|_| ()))
}

// ---------------------------------------------------------------------------------------
// The typed domain configuration (xl_parse.c's parse_config_data).

/// What to do when a domain stops (`on_poweroff`, `on_reboot`, `on_crash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `destroy`
    Destroy,
    /// `restart`
    Restart,
    /// `rename-restart`
    RenameRestart,
    /// `preserve`
    Preserve,
    /// `coredump-destroy`
    CoredumpDestroy,
    /// `coredump-restart`
    CoredumpRestart,
    /// `soft-reset`
    SoftReset,
}

impl Action {
    /// All actions, in libxl's order.
    pub const ALL: [Action; 7] = [
        Action::Destroy,
        Action::Restart,
        Action::RenameRestart,
        Action::Preserve,
        Action::CoredumpDestroy,
        Action::CoredumpRestart,
        Action::SoftReset,
    ];

    /// The name in `xl.cfg`.
    pub fn cfg_name(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Restart => "restart",
            Action::RenameRestart => "rename-restart",
            Action::Preserve => "preserve",
            Action::CoredumpDestroy => "coredump-destroy",
            Action::CoredumpRestart => "coredump-restart",
            Action::SoftReset => "soft-reset",
        }
    }

    /// The name in libxl's JSON (`libxl_action_on_shutdown_to_string`).
    pub fn json_name(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Restart => "restart",
            Action::RenameRestart => "restart_rename",
            Action::Preserve => "preserve",
            Action::CoredumpDestroy => "coredump_destroy",
            Action::CoredumpRestart => "coredump_restart",
            Action::SoftReset => "soft_reset",
        }
    }

    /// Parses an `xl.cfg` action name.
    pub fn from_cfg(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.cfg_name() == s)
    }
}

/// The largest physical CPU number a [`CpuSet`] can hold, plus one.
pub const MAX_CPUS: usize = 256;

/// A set of physical CPUs (a `libxl_bitmap` of `MAX_CPUS` bits).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuSet {
    bits: [u64; MAX_CPUS / 64],
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl CpuSet {
    /// No CPU.
    pub const fn none() -> Self {
        CpuSet {
            bits: [0; MAX_CPUS / 64],
        }
    }

    /// Every CPU (`"all"`).
    pub const fn all() -> Self {
        CpuSet {
            bits: [u64::MAX; MAX_CPUS / 64],
        }
    }

    /// Adds `cpu` (ignored past [`MAX_CPUS`], as libxl ignores bits past the map's end).
    pub fn set(&mut self, cpu: usize) {
        if let Some(w) = self.bits.get_mut(cpu / 64) {
            *w |= 1 << (cpu % 64);
        }
    }

    /// Removes `cpu`.
    pub fn clear(&mut self, cpu: usize) {
        if let Some(w) = self.bits.get_mut(cpu / 64) {
            *w &= !(1 << (cpu % 64));
        }
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        self.bits
            .get(cpu / 64)
            .is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// The CPUs in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_CPUS).filter(|c| self.contains(*c))
    }

    /// The set restricted to CPUs `0..n`.
    pub fn truncated(&self, n: usize) -> CpuSet {
        let mut s = CpuSet::none();
        for c in self.iter().take_while(|c| *c < n) {
            s.set(c);
        }
        s
    }

    /// Parses xl's CPU list syntax (`parse_cpurange`): comma-separated `N`, `N-M`,
    /// `all`, `node:N`/`nodes:N-M`, each optionally negated with `^`. NUMA nodes are
    /// resolved with `node_cpus` (`None` for a node that does not exist).
    pub fn parse(s: &str, node_cpus: &dyn Fn(usize) -> Option<CpuSet>) -> Result<CpuSet, String> {
        let mut set = CpuSet::none();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (neg, rest) = match part.strip_prefix('^') {
                Some(r) => (true, r),
                None => (false, part),
            };
            let (nodes, rest) = match rest
                .strip_prefix("node:")
                .or_else(|| rest.strip_prefix("nodes:"))
            {
                Some(r) => (true, r),
                None => (false, rest),
            };
            if rest == "all" {
                if neg {
                    return Err("Can't combine \"^\" and \"all\".".into());
                }
                set = CpuSet::all();
                continue;
            }
            let (a, b) = parse_range(rest).ok_or_else(|| format!("Invalid pcpu range: {rest}."))?;
            // Past the map's end nothing changes: bound the walk.
            let b = b.min(MAX_CPUS as u64);
            let mut i = a;
            while i <= b {
                let idx = usize::try_from(i).unwrap_or(usize::MAX);
                if nodes {
                    let cpus = node_cpus(idx)
                        .ok_or_else(|| String::from("libxl_node_to_cpumap failed."))?;
                    for c in cpus.iter() {
                        if neg {
                            set.clear(c)
                        } else {
                            set.set(c)
                        }
                    }
                } else if neg {
                    set.clear(idx);
                } else {
                    set.set(idx);
                }
                i += 1;
            }
        }
        Ok(set)
    }

    /// Formats as xl's `print_bitmap` does for a map of `nr` CPUs: `all`, `none`, or
    /// ranges such as `0-3,5`.
    pub fn to_xl_string(&self, nr: usize) -> String {
        let nr = nr.min(MAX_CPUS);
        if nr > 0 && (0..nr).all(|c| self.contains(c)) {
            return "all".into();
        }
        let mut out = String::new();
        let mut c = 0;
        while c < nr {
            if !self.contains(c) {
                c += 1;
                continue;
            }
            let start = c;
            while c < nr && self.contains(c) {
                c += 1;
            }
            if !out.is_empty() {
                out.push(',');
            }
            if c - 1 > start {
                out.push_str(&format!("{}-{}", start, c - 1));
            } else {
                out.push_str(&format!("{start}"));
            }
        }
        if out.is_empty() {
            out.push_str("none");
        }
        out
    }
}

/// xl's `parse_range`: `N` or `N-M` with `N <= M`, decimal.
fn parse_range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let num = |t: &str| -> Option<u64> {
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let a = num(a)?;
    let b = match b {
        Some(b) => num(b)?,
        None => a,
    };
    (b >= a).then_some((a, b))
}

/// vCPU affinity from `cpus=` / `cpus_soft=`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Affinity {
    /// Not given: no pinning.
    #[default]
    Unset,
    /// A string: the same set for every vCPU.
    All(CpuSet),
    /// A list: one set per vCPU, in order (vCPUs past its end are unpinned).
    PerVcpu(Vec<CpuSet>),
}

impl Affinity {
    /// The set for `vcpu`, `None` if not pinned.
    pub fn for_vcpu(&self, vcpu: usize) -> Option<CpuSet> {
        match self {
            Affinity::Unset => None,
            Affinity::All(s) => Some(*s),
            Affinity::PerVcpu(v) => v.get(vcpu).copied(),
        }
    }
}

/// A domain's configuration, with xl's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    /// `name` (mandatory).
    pub name: String,
    /// `kernel`: the PV kernel's path in dom0's ramdisk.
    pub kernel: String,
    /// `ramdisk`.
    pub ramdisk: Option<String>,
    /// The kernel command line from `cmdline`, or `root` and `extra`.
    pub cmdline: Option<String>,
    /// `memory`, in KiB (default: `maxmem`, else 32 MiB as libxl).
    pub target_memkb: u64,
    /// `maxmem`, in KiB (default: `memory`).
    pub max_memkb: u64,
    /// `vcpus`: vCPUs online at start (default 1).
    pub vcpus: u32,
    /// `maxvcpus` (default: `vcpus`).
    pub max_vcpus: u32,
    /// `cpus`.
    pub cpus: Affinity,
    /// `cpus_soft`.
    pub cpus_soft: Affinity,
    /// `cpu_weight` (credit scheduler; default 256 when `None`).
    pub cpu_weight: Option<u32>,
    /// `cap` (credit scheduler; default 0 = none).
    pub cap: Option<u32>,
    /// `on_poweroff` (default destroy).
    pub on_poweroff: Action,
    /// `on_reboot` (default restart).
    pub on_reboot: Action,
    /// `on_watchdog` (default destroy).
    pub on_watchdog: Action,
    /// `on_crash` (default destroy).
    pub on_crash: Action,
    /// `on_soft_reset` (default soft-reset).
    pub on_soft_reset: Action,
    /// `uuid`, if given (16 bytes).
    pub uuid: Option<[u8; 16]>,
    /// `disk` entries, unparsed (later issue).
    pub disks: Vec<String>,
    /// `vif` entries, unparsed (later issue).
    pub vifs: Vec<String>,
}

/// The keys [`DomainConfig::from_config`] understands.
pub const KNOWN_KEYS: &[&str] = &[
    "name",
    "type",
    "builder",
    "kernel",
    "ramdisk",
    "cmdline",
    "root",
    "extra",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "cpus",
    "cpus_soft",
    "cpu_weight",
    "cap",
    "on_poweroff",
    "on_reboot",
    "on_watchdog",
    "on_crash",
    "on_soft_reset",
    "uuid",
    "disk",
    "vif",
];

/// xl.cfg keys that Xen's xl accepts but this toolstack does not act on (yet).
const XL_KEYS_IGNORED: &[&str] = &[
    "seclabel",
    "init_seclabel",
    "hap",
    "oos",
    "pool",
    "period",
    "slice",
    "latency",
    "extratime",
    "vnuma",
    "max_grant_frames",
    "max_maptrack_frames",
    "max_grant_version",
    "bootloader",
    "bootloader_args",
    "e820_host",
    "vfb",
    "vkb",
    "vtpm",
    "p9",
    "pvcalls",
    "channel",
    "vdispl",
    "vsnd",
    "usbctrl",
    "usbdev",
    "pci",
    "dtdev",
    "ioports",
    "irqs",
    "iomem",
    "claim_mode",
    "event_channels",
    "localtime",
    "rtc_timeoffset",
    "max_event_channels",
    "tsc_mode",
    "driver_domain",
    "device_model_version",
    "vnc",
    "sdl",
    "serial",
    "boot",
    "acpi",
    "apic",
    "pae",
    "nographic",
    "videoram",
    "xen_platform_pci",
    "on_watchdog",
    "nomigrate",
    "cpuid",
    "dm_restrict",
    "vcpu_hard_affinity",
    "gfx_passthru",
];

/// A config `xl create` refuses, with xl's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl DomainConfig {
    /// The stub configuration `xen-init-dom0` stores for a domain no config file made
    /// (dom0): a PV domain called `name` with libxl's defaults and nothing else.
    pub fn stub(name: &str) -> DomainConfig {
        DomainConfig {
            name: name.into(),
            kernel: String::new(),
            ramdisk: None,
            cmdline: None,
            target_memkb: 0,
            max_memkb: 0,
            vcpus: 0,
            max_vcpus: 0,
            cpus: Affinity::Unset,
            cpus_soft: Affinity::Unset,
            cpu_weight: None,
            cap: None,
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_watchdog: Action::Destroy,
            on_crash: Action::Destroy,
            on_soft_reset: Action::SoftReset,
            uuid: None,
            disks: Vec::new(),
            vifs: Vec::new(),
        }
    }

    /// Applies xl's semantics to a parsed config. `warnings` receives every line xl would
    /// print without stopping (bad numbers, lists where a string was expected, unknown
    /// keys...), each without a trailing newline. `host_node_cpus` maps a NUMA node to its
    /// CPUs for `cpus="node:N"`.
    pub fn from_config(
        cfg: &Config,
        host_node_cpus: &dyn Fn(usize) -> Option<CpuSet>,
        warnings: &mut Vec<String>,
    ) -> Result<DomainConfig, ConfigError> {
        let mut warn = |r: Result<(), GetError>| {
            if let Err(GetError::Invalid(w)) = r {
                warnings.push(w);
            }
        };
        let string = |key: &str, warn: &mut dyn FnMut(Result<(), GetError>)| -> Option<String> {
            match cfg.get_string(key) {
                Ok(s) => Some(s.into()),
                Err(e) => {
                    warn(Err(e));
                    None
                }
            }
        };
        let long = |key: &str, warn: &mut dyn FnMut(Result<(), GetError>)| -> Option<i64> {
            match cfg.get_long(key) {
                Ok(v) => Some(v),
                Err(e) => {
                    warn(Err(e));
                    None
                }
            }
        };

        // type / builder
        if let Some(t) = string("type", &mut warn) {
            match domain_type(&t, &["hvm", "pv", "pvh"]) {
                Some("pv") => {}
                Some(other) => {
                    return Err(ConfigError(format!(
                        "Domain type {other} is not supported: this hypervisor runs PV domains only (type=\"pv\")."
                    )))
                }
                None => return Err(ConfigError(format!("Invalid domain type {t}."))),
            }
        }
        if let Some(b) = string("builder", &mut warn) {
            match domain_type(&b, &["hvm", "generic"]) {
                Some("generic") => {}
                Some(_) => {
                    if cfg.get_string("type").is_ok() {
                        return Err(ConfigError(
                            "Contradicting \"builder\" and \"type\" options specified.".into(),
                        ));
                    }
                    return Err(ConfigError(
                        "Domain type hvm is not supported: this hypervisor runs PV domains only (type=\"pv\").".into(),
                    ));
                }
                None => return Err(ConfigError(format!("Invalid domain type {b}."))),
            }
        }

        let Some(name) = string("name", &mut warn) else {
            return Err(ConfigError("Domain name must be specified.".into()));
        };

        let uuid = match string("uuid", &mut warn) {
            Some(u) => Some(
                parse_uuid(&u).ok_or_else(|| ConfigError(format!("Failed to parse UUID: {u}")))?,
            ),
            None => None,
        };

        let cpu_weight =
            long("cpu_weight", &mut warn).map(|w| w.clamp(0, i64::from(u32::MAX)) as u32);
        let cap = long("cap", &mut warn).map(|c| c.clamp(0, i64::from(u32::MAX)) as u32);

        // Memory, in MiB in the file.
        let memkb = |mb: i64| -> Result<u64, ConfigError> {
            u64::try_from(mb)
                .ok()
                .and_then(|m| m.checked_mul(1024))
                .ok_or_else(|| ConfigError(format!("Invalid memory size {mb}.")))
        };
        let target = long("memory", &mut warn).map(memkb).transpose()?;
        let max = long("maxmem", &mut warn).map(memkb).transpose()?;
        let (target_memkb, max_memkb) = match (target, max) {
            (None, None) => (32 * 1024, 32 * 1024),
            (Some(t), None) => (t, t),
            (None, Some(m)) => (m, m),
            (Some(t), Some(m)) => (t, m),
        };
        if target_memkb > max_memkb {
            return Err(ConfigError(format!(
                "memory ({} MB) must not be greater than maxmem ({} MB).",
                target_memkb / 1024,
                max_memkb / 1024
            )));
        }
        if target_memkb == 0 {
            return Err(ConfigError("memory must be at least 1 MB.".into()));
        }

        let to_u32 = |v: i64, what: &str| -> Result<u32, ConfigError> {
            u32::try_from(v)
                .ok()
                .filter(|v| *v >= 1 && *v <= 4096)
                .ok_or_else(|| ConfigError(format!("Invalid number of {what}: {v}.")))
        };
        let vcpus_set = long("vcpus", &mut warn)
            .map(|v| to_u32(v, "vcpus"))
            .transpose()?;
        let maxv_set = long("maxvcpus", &mut warn)
            .map(|v| to_u32(v, "maxvcpus"))
            .transpose()?;
        let vcpus = vcpus_set.unwrap_or(1);
        let max_vcpus = maxv_set.unwrap_or(vcpus);
        if max_vcpus < vcpus {
            return Err(ConfigError("xl: maxvcpus < vcpus".into()));
        }

        let affinity = |key: &str| -> Result<Affinity, ConfigError> {
            match cfg.get(key).map(|s| &s.value) {
                None => Ok(Affinity::Unset),
                Some(Value::Atom(s)) => Ok(Affinity::All(
                    CpuSet::parse(s, host_node_cpus).map_err(ConfigError)?,
                )),
                Some(Value::List(items)) => {
                    let mut v = Vec::new();
                    // xl stops at the first non-string entry and ignores entries past
                    // the last vCPU.
                    for item in items.iter().take(max_vcpus as usize) {
                        let Value::Atom(s) = item else { break };
                        v.push(CpuSet::parse(s, host_node_cpus).map_err(ConfigError)?);
                    }
                    Ok(Affinity::PerVcpu(v))
                }
            }
        };
        let cpus = affinity("cpus")?;
        let cpus_soft = affinity("cpus_soft")?;

        let mut action = |key: &str, default: Action| -> Result<Action, ConfigError> {
            match string(key, &mut warn) {
                None => Ok(default),
                Some(s) => Action::from_cfg(&s)
                    .ok_or_else(|| ConfigError(format!("Unknown {key} action \"{s}\" specified"))),
            }
        };
        let on_poweroff = action("on_poweroff", Action::Destroy)?;
        let on_reboot = action("on_reboot", Action::Restart)?;
        let on_watchdog = action("on_watchdog", Action::Destroy)?;
        let on_crash = action("on_crash", Action::Destroy)?;
        let on_soft_reset = action("on_soft_reset", Action::SoftReset)?;

        let kernel = string("kernel", &mut warn);
        let ramdisk = string("ramdisk", &mut warn);

        // parse_cmdline
        let c = string("cmdline", &mut warn);
        let root = string("root", &mut warn);
        let extra = string("extra", &mut warn);
        let cmdline = match (c, root, extra) {
            (Some(c), r, e) => {
                if r.is_some() || e.is_some() {
                    warnings
                        .push("Warning: ignoring root= and extra= in favour of cmdline=".into());
                }
                Some(c)
            }
            (None, Some(r), Some(e)) => Some(format!("root={r} {e}")),
            (None, Some(r), None) => Some(format!("root={r}")),
            (None, None, e) => e,
        };

        let strings = |key: &str, warnings: &mut Vec<String>| -> Vec<String> {
            match cfg.get_list(key) {
                Ok(items) => items
                    .iter()
                    .filter_map(|v| match v {
                        Value::Atom(s) => Some(s.clone()),
                        Value::List(_) => None,
                    })
                    .collect(),
                Err(GetError::Invalid(w)) => {
                    warnings.push(w);
                    Vec::new()
                }
                Err(GetError::Missing) => Vec::new(),
            }
        };
        let disks = strings("disk", warnings);
        let vifs = strings("vif", warnings);

        let Some(kernel) = kernel else {
            return Err(ConfigError(
                "A PV domain needs a kernel: set kernel=\"PATH\" (bootloaders are not supported)."
                    .into(),
            ));
        };

        // Keys this toolstack does not know, in file order, once each.
        let mut seen: Vec<&str> = Vec::new();
        for s in &cfg.settings {
            let n = s.name.as_str();
            if KNOWN_KEYS.contains(&n) || seen.contains(&n) {
                continue;
            }
            seen.push(n);
            if XL_KEYS_IGNORED.contains(&n) {
                warnings.push(format!(
                    "{}:{}: warning: parameter `{}' is not supported by this toolstack and is ignored",
                    cfg.source, s.line, n
                ));
            } else {
                warnings.push(format!(
                    "{}:{}: warning: unknown parameter `{}' ignored",
                    cfg.source, s.line, n
                ));
            }
        }

        Ok(DomainConfig {
            name,
            kernel,
            ramdisk,
            cmdline,
            target_memkb,
            max_memkb,
            vcpus,
            max_vcpus,
            cpus,
            cpus_soft,
            cpu_weight,
            cap,
            on_poweroff,
            on_reboot,
            on_watchdog,
            on_crash,
            on_soft_reset,
            uuid,
            disks,
            vifs,
        })
    }
}

/// xl's `!strncmp(buf, NAME, strlen(buf))`: `buf` is a prefix of `NAME` (first match wins).
fn domain_type<'n>(buf: &str, names: &[&'n str]) -> Option<&'n str> {
    names.iter().copied().find(|n| n.starts_with(buf))
}

/// `libxl_uuid_from_string`: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = (*b.get(i)? as char).to_digit(16)?;
        let lo = (*b.get(i + 1)? as char).to_digit(16)?;
        *out.get_mut(n)? = (hi * 16 + lo) as u8;
        n += 1;
        i += 2;
    }
    Some(out)
}
