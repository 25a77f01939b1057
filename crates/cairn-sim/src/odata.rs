//! OData query options as Graph's services read them — `$filter`, `$orderby`, `$search`,
//! `$expand`, `$count` — evaluated over the JSON the simulator renders, and the rules each
//! service (directory, Outlook, files) applies to them. A query a service does not answer
//! is answered with that service's own error code, never a generic 400.

use crate::wire::{Req, Resp};
use serde_json::Value;
use std::cmp::Ordering;

/// The service behind a collection (the one `permissions` answers refusals for): it
/// decides which queries are allowed and how a refused one is answered.
pub use crate::permissions::Service;

impl Service {
    /// A query the service does not answer (or the simulator deliberately does not serve).
    pub fn unsupported(self, message: &str) -> Resp {
        let code = match self {
            Service::Directory => "Request_UnsupportedQuery",
            Service::Outlook => "ErrorInvalidUrlQuery",
            Service::Files => "invalidRequest",
            Service::Teams => "BadRequest",
        };
        Resp::error(400, code, message)
    }

    /// A `$filter` the service cannot parse or evaluate.
    pub fn bad_filter(self, message: &str) -> Resp {
        let code = match self {
            Service::Directory => "Request_BadRequest",
            Service::Outlook => "ErrorInvalidUrlQueryFilter",
            Service::Files => "invalidRequest",
            Service::Teams => "BadRequest",
        };
        Resp::error(400, code, &format!("Invalid filter clause: {message}"))
    }
}

// ---- $filter ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    /// Quoted strings and unquoted date-times, GUIDs and enum members.
    Str(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A property path (`from/emailAddress/address`); under a lambda, relative to its
    /// variable when the first step is the variable (`x/skuId`, or `x` itself: empty).
    Prop(Vec<String>),
    Lit(Lit),
    /// `tolower(p)`, `toupper(p)`, `trim(p)`: comparisons ignore case already.
    Fold(Box<Operand>),
    /// `p/$count`: the length of a collection.
    Count(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(CmpOp, Operand, Operand),
    In(Operand, Vec<Lit>),
    /// `startswith`, `endswith`, `contains` (names lower-cased).
    Call(String, Operand, Operand),
    /// `path/any(v: body)` or `path/all(…)`; `var` names the element inside `body`.
    Lambda {
        all: bool,
        path: Vec<String>,
        var: String,
        body: Box<Expr>,
    },
    /// A boolean property or literal on its own (`isRead`, `true`).
    Truthy(Operand),
}

/// One use of a property in a filter, for a service's capability check: the property path,
/// and the operator (`eq`, `ne`, `ge`, `in`, `startswith`, `$count`; `not` for any use
/// under a negation; a lambda's uses carry the collection's path first).
#[derive(Clone, Debug, PartialEq)]
pub struct Use {
    pub path: Vec<String>,
    pub op: String,
    /// Compared with `null`.
    pub null: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma);
            }
            '\'' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            v.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => v.push(c),
                        None => return Err("unterminated string literal".into()),
                    }
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "(),'".contains(c) {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Lambda variables in scope.
    vars: Vec<String>,
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek_word().is_some_and(|x| x.eq_ignore_ascii_case(w)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok) -> Result<(), String> {
        if self.toks.get(self.pos) == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {t:?} at token {}", self.pos + 1))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat_word("or") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while self.eat_word("and") {
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            // A parenthesised expression (operands never start with a parenthesis).
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(e);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        // Boolean functions and lambdas.
        if let Some(w) = self.peek_word().map(str::to_string) {
            let lower = w.to_ascii_lowercase();
            if ["startswith", "endswith", "contains"].contains(&lower.as_str())
                && self.toks.get(self.pos + 1) == Some(&Tok::Open)
            {
                self.pos += 2;
                let a = self.operand()?;
                self.expect(Tok::Comma)?;
                let b = self.operand()?;
                self.expect(Tok::Close)?;
                let call = Expr::Call(lower, a, b);
                return self.compared_to_bool(call);
            }
            if let Some((path, kind)) = w.rsplit_once('/')
                && (kind.eq_ignore_ascii_case("any") || kind.eq_ignore_ascii_case("all"))
                && self.toks.get(self.pos + 1) == Some(&Tok::Open)
            {
                self.pos += 2;
                let path = self.path(path);
                // `x: body`; the tokenizer leaves `x:x` or `x:` as one word.
                let Some(Tok::Word(head)) = self.toks.get(self.pos).cloned() else {
                    return Err("expected a lambda variable".into());
                };
                let Some((var, rest)) = head.split_once(':') else {
                    return Err("expected ':' after the lambda variable".into());
                };
                let var = var.trim().to_string();
                if rest.is_empty() {
                    self.pos += 1;
                } else {
                    self.toks[self.pos] = Tok::Word(rest.to_string());
                }
                self.vars.push(var.clone());
                let body = self.or()?;
                self.vars.pop();
                self.expect(Tok::Close)?;
                return Ok(Expr::Lambda {
                    all: kind.eq_ignore_ascii_case("all"),
                    path,
                    var,
                    body: Box::new(body),
                });
            }
        }
        let left = self.operand()?;
        let op = match self.peek_word().map(str::to_ascii_lowercase).as_deref() {
            Some("eq") => Some(CmpOp::Eq),
            Some("ne") => Some(CmpOp::Ne),
            Some("gt") => Some(CmpOp::Gt),
            Some("ge") => Some(CmpOp::Ge),
            Some("lt") => Some(CmpOp::Lt),
            Some("le") => Some(CmpOp::Le),
            Some("in") => {
                self.pos += 1;
                self.expect(Tok::Open)?;
                let mut list = Vec::new();
                loop {
                    match self.operand()? {
                        Operand::Lit(l) => list.push(l),
                        _ => return Err("'in' takes a list of literals".into()),
                    }
                    if self.toks.get(self.pos) == Some(&Tok::Comma) {
                        self.pos += 1;
                        continue;
                    }
                    self.expect(Tok::Close)?;
                    break;
                }
                return Ok(Expr::In(left, list));
            }
            _ => None,
        };
        match op {
            Some(op) => {
                self.pos += 1;
                let right = self.operand()?;
                Ok(Expr::Cmp(op, left, right))
            }
            None => Ok(Expr::Truthy(left)),
        }
    }

    /// `startswith(a,'x') eq true` is the same as `startswith(a,'x')`.
    fn compared_to_bool(&mut self, call: Expr) -> Result<Expr, String> {
        let save = self.pos;
        let negate = if self.eat_word("eq") {
            false
        } else if self.eat_word("ne") {
            true
        } else {
            return Ok(call);
        };
        match self.operand()? {
            Operand::Lit(Lit::Bool(b)) if b != negate => Ok(call),
            Operand::Lit(Lit::Bool(_)) => Ok(Expr::Not(Box::new(call))),
            _ => {
                self.pos = save;
                Err("a boolean function compares to true or false only".into())
            }
        }
    }

    fn path(&self, p: &str) -> Vec<String> {
        let mut steps: Vec<String> = p
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        // Under a lambda, `x/skuId` is relative to the element; `x` is the element.
        if steps
            .first()
            .is_some_and(|f| self.vars.iter().any(|v| v == f))
        {
            steps.remove(0);
        }
        steps
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Operand::Lit(Lit::Str(s)))
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                let lower = w.to_ascii_lowercase();
                if ["tolower", "toupper", "trim"].contains(&lower.as_str())
                    && self.toks.get(self.pos) == Some(&Tok::Open)
                {
                    self.pos += 1;
                    let inner = self.operand()?;
                    self.expect(Tok::Close)?;
                    return Ok(Operand::Fold(Box::new(inner)));
                }
                match lower.as_str() {
                    "null" => return Ok(Operand::Lit(Lit::Null)),
                    "true" => return Ok(Operand::Lit(Lit::Bool(true))),
                    "false" => return Ok(Operand::Lit(Lit::Bool(false))),
                    _ => {}
                }
                if let Ok(n) = w.parse::<f64>() {
                    return Ok(Operand::Lit(Lit::Num(n)));
                }
                if w.starts_with(|c: char| c.is_ascii_digit()) || is_guid(&w) {
                    // Unquoted date-times (`2024-01-31T00:00:00Z`) and GUIDs.
                    return Ok(Operand::Lit(Lit::Str(w)));
                }
                if let Some(p) = w.strip_suffix("/$count") {
                    return Ok(Operand::Count(self.path(p)));
                }
                if w.chars()
                    .all(|c| c.is_alphanumeric() || "/_.@$-".contains(c))
                {
                    return Ok(Operand::Prop(self.path(&w)));
                }
                Err(format!("unexpected '{w}'"))
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
}

impl Expr {
    pub fn parse(s: &str) -> Result<Expr, String> {
        let mut p = Parser {
            toks: tokenize(s)?,
            pos: 0,
            vars: Vec::new(),
        };
        if p.toks.is_empty() {
            return Err("the filter is empty".into());
        }
        let e = p.or()?;
        if p.pos != p.toks.len() {
            return Err(format!("syntax error at token {}", p.pos + 1));
        }
        Ok(e)
    }

    pub fn matches(&self, v: &Value) -> bool {
        self.eval(v)
    }

    /// `cur` is the item, or under a lambda its element.
    fn eval(&self, cur: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(cur) || b.eval(cur),
            Expr::And(a, b) => a.eval(cur) && b.eval(cur),
            Expr::Not(a) => !a.eval(cur),
            Expr::Cmp(op, a, b) => compare(*op, &a.value(cur), &b.value(cur)),
            Expr::In(a, list) => {
                let v = a.value(cur);
                list.iter()
                    .any(|l| compare(CmpOp::Eq, &v, &Operand::Lit(l.clone()).value(cur)))
            }
            Expr::Call(f, a, b) => {
                let (Some(a), Some(b)) = (text(&a.value(cur)), text(&b.value(cur))) else {
                    return false;
                };
                let (a, b) = (a.to_lowercase(), b.to_lowercase());
                match f.as_str() {
                    "startswith" => a.starts_with(&b),
                    "endswith" => a.ends_with(&b),
                    _ => a.contains(&b),
                }
            }
            Expr::Lambda {
                all, path, body, ..
            } => {
                let coll = lookup(cur, path);
                let items = coll.as_array().map(Vec::as_slice).unwrap_or(&[]);
                if *all {
                    items.iter().all(|x| body.eval(x))
                } else {
                    items.iter().any(|x| body.eval(x))
                }
            }
            Expr::Truthy(a) => a.value(cur) == Value::Bool(true),
        }
    }

    /// Every property use, in order of appearance, for capability checks.
    pub fn uses(&self) -> Vec<Use> {
        let mut out = Vec::new();
        self.collect(&mut out, &[]);
        out
    }

    fn collect(&self, out: &mut Vec<Use>, prefix: &[String]) {
        let prop = |o: &Operand| -> Option<Vec<String>> {
            match o {
                Operand::Prop(p) | Operand::Count(p) => {
                    Some(prefix.iter().chain(p.iter()).cloned().collect())
                }
                Operand::Fold(inner) => match inner.as_ref() {
                    Operand::Prop(p) => Some(prefix.iter().chain(p.iter()).cloned().collect()),
                    _ => None,
                },
                Operand::Lit(_) => None,
            }
        };
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.collect(out, prefix);
                b.collect(out, prefix);
            }
            Expr::Not(a) => {
                let before = out.len();
                a.collect(out, prefix);
                for u in &mut out[before..] {
                    u.op = "not".into();
                }
            }
            Expr::Cmp(op, a, b) => {
                let null =
                    matches!(a, Operand::Lit(Lit::Null)) || matches!(b, Operand::Lit(Lit::Null));
                let counted = matches!(a, Operand::Count(_)) || matches!(b, Operand::Count(_));
                for p in [prop(a), prop(b)].into_iter().flatten() {
                    out.push(Use {
                        path: p,
                        op: if counted {
                            "$count".into()
                        } else {
                            op.name().into()
                        },
                        null,
                    });
                }
            }
            Expr::In(a, _) => {
                if let Some(p) = prop(a) {
                    out.push(Use {
                        path: p,
                        op: "in".into(),
                        null: false,
                    });
                }
            }
            Expr::Call(f, a, _) => {
                if let Some(p) = prop(a) {
                    out.push(Use {
                        path: p,
                        op: f.clone(),
                        null: false,
                    });
                }
            }
            Expr::Lambda { path, body, .. } => {
                let inner: Vec<String> = prefix.iter().chain(path.iter()).cloned().collect();
                let before = out.len();
                body.collect(out, &inner);
                if out.len() == before {
                    out.push(Use {
                        path: inner,
                        op: "eq".into(),
                        null: false,
                    });
                }
            }
            Expr::Truthy(a) => {
                if let Some(p) = prop(a) {
                    out.push(Use {
                        path: p,
                        op: "eq".into(),
                        null: false,
                    });
                }
            }
        }
    }
}

impl Operand {
    fn value(&self, cur: &Value) -> Value {
        match self {
            Operand::Prop(p) => lookup(cur, p),
            Operand::Count(p) => Value::from(lookup(cur, p).as_array().map_or(0, Vec::len)),
            Operand::Fold(inner) => inner.value(cur),
            Operand::Lit(Lit::Null) => Value::Null,
            Operand::Lit(Lit::Bool(b)) => Value::Bool(*b),
            Operand::Lit(Lit::Num(n)) => serde_json::Number::from_f64(*n)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Operand::Lit(Lit::Str(s)) => Value::String(s.clone()),
        }
    }
}

fn is_guid(w: &str) -> bool {
    let parts: Vec<&str> = w.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A property path looked up without regard to case, as Graph matches property names.
pub fn lookup(v: &Value, path: &[String]) -> Value {
    let mut cur = v;
    for step in path {
        let next = cur
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(step)));
        match next {
            Some((_, x)) => cur = x,
            None => return Value::Null,
        }
    }
    cur.clone()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    let s = s.trim_end_matches('Z');
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Orders two JSON values as Graph does for `$filter` and `$orderby`: numbers as numbers,
/// date-times as instants, strings without regard to case, null before everything.
pub fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) => Some(Ordering::Less),
        (_, Value::Null) => Some(Ordering::Greater),
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => {
            if let (Some(tx), Some(ty)) = (as_time(x), as_time(y))
                && x.len() >= 10
                && y.len() >= 10
            {
                return Some(tx.cmp(&ty));
            }
            Some(x.to_lowercase().cmp(&y.to_lowercase()))
        }
        (Value::String(x), Value::Number(y)) => x.parse::<f64>().ok()?.partial_cmp(&y.as_f64()?),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        (Value::String(x), Value::Bool(y)) => Some(x.eq_ignore_ascii_case(&y.to_string()))
            .filter(|e| *e)
            .map(|_| Ordering::Equal),
        _ => None,
    }
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    // Comparing with null is equality with a missing or null value, as OData defines it.
    if a.is_null() || b.is_null() {
        return match op {
            CmpOp::Eq => a.is_null() && b.is_null(),
            CmpOp::Ne => a.is_null() != b.is_null(),
            _ => false,
        };
    }
    let Some(o) = order(a, b) else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
    }
}

// ---- $orderby ---------------------------------------------------------------------------

/// `$orderby` clauses: property paths with a direction (true = descending).
pub type OrderBy = Vec<(Vec<String>, bool)>;

/// `$orderby=a/b desc,c`.
pub fn parse_orderby(s: &str) -> Result<OrderBy, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let path = words.next().unwrap_or_default();
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(w) => return Err(format!("unexpected '{w}' in $orderby")),
        };
        if words.next().is_some() {
            return Err(format!("unexpected text in $orderby clause '{part}'"));
        }
        out.push((path.split('/').map(str::to_string).collect(), desc));
    }
    if out.is_empty() {
        return Err("$orderby is empty".into());
    }
    Ok(out)
}

/// Sorts items by `$orderby` clauses (a stable sort: ties keep their order).
pub fn sort(items: &mut [Value], by: &[(Vec<String>, bool)]) {
    items.sort_by(|a, b| {
        for (path, desc) in by {
            let o = order(&lookup(a, path), &lookup(b, path)).unwrap_or(Ordering::Equal);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

// ---- $search ----------------------------------------------------------------------------

/// A `$search` expression: clauses (`"displayName:foo"`, `pizza`, `subject:lunch`) joined
/// by AND / OR (implicit AND between adjacent clauses), with parentheses.
#[derive(Clone, Debug, PartialEq)]
pub enum Search {
    Term(Option<String>, String),
    And(Box<Search>, Box<Search>),
    Or(Box<Search>, Box<Search>),
    Not(Box<Search>),
}

impl Search {
    pub fn parse(s: &str) -> Result<Search, String> {
        let toks = search_tokens(s)?;
        let mut pos = 0;
        let e = search_or(&toks, &mut pos)?;
        if pos != toks.len() {
            return Err("unexpected text in $search".into());
        }
        Ok(e)
    }

    /// Whether an item matches, `field(property, term)` deciding one clause (`property`
    /// `None`: the service's default fields).
    pub fn matches(&self, field: &dyn Fn(Option<&str>, &str) -> bool) -> bool {
        match self {
            Search::Term(p, t) => field(p.as_deref(), t),
            Search::And(a, b) => a.matches(field) && b.matches(field),
            Search::Or(a, b) => a.matches(field) || b.matches(field),
            Search::Not(a) => !a.matches(field),
        }
    }

    /// The properties named by clauses.
    pub fn properties(&self) -> Vec<String> {
        match self {
            Search::Term(p, _) => p.iter().cloned().collect(),
            Search::And(a, b) | Search::Or(a, b) => {
                let mut v = a.properties();
                v.extend(b.properties());
                v
            }
            Search::Not(a) => a.properties(),
        }
    }

    /// Whether some clause names no property.
    pub fn has_bare_term(&self) -> bool {
        match self {
            Search::Term(p, _) => p.is_none(),
            Search::And(a, b) | Search::Or(a, b) => a.has_bare_term() || b.has_bare_term(),
            Search::Not(a) => a.has_bare_term(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum STok {
    Clause(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn search_tokens(s: &str) -> Result<Vec<STok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(STok::Open);
            }
            ')' => {
                chars.next();
                out.push(STok::Close);
            }
            '"' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => v.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => v.push(c),
                        None => return Err("unterminated quoted clause in $search".into()),
                    }
                }
                // A quoted clause with several words: each word is a term (KQL AND).
                let words: Vec<&str> = v.split_whitespace().collect();
                match words.as_slice() {
                    [] => {}
                    [one] => out.push(STok::Clause(one.to_string())),
                    many => {
                        let (prop, first) = match many[0].split_once(':') {
                            Some((p, t)) => (Some(p), t),
                            None => (None, many[0]),
                        };
                        out.push(STok::Open);
                        for (i, w) in std::iter::once(first)
                            .chain(many[1..].iter().copied())
                            .enumerate()
                        {
                            if i > 0 {
                                out.push(STok::And);
                            }
                            out.push(STok::Clause(match prop {
                                Some(p) => format!("{p}:{w}"),
                                None => w.to_string(),
                            }));
                        }
                        out.push(STok::Close);
                    }
                }
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()\"".contains(c) {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(match w.as_str() {
                    "AND" => STok::And,
                    "OR" => STok::Or,
                    "NOT" => STok::Not,
                    _ => STok::Clause(w),
                });
            }
        }
    }
    if out.is_empty() {
        return Err("$search is empty".into());
    }
    Ok(out)
}

fn search_or(t: &[STok], pos: &mut usize) -> Result<Search, String> {
    let mut e = search_and(t, pos)?;
    while t.get(*pos) == Some(&STok::Or) {
        *pos += 1;
        e = Search::Or(Box::new(e), Box::new(search_and(t, pos)?));
    }
    Ok(e)
}

fn search_and(t: &[STok], pos: &mut usize) -> Result<Search, String> {
    let mut e = search_unary(t, pos)?;
    loop {
        match t.get(*pos) {
            Some(STok::And) => {
                *pos += 1;
                e = Search::And(Box::new(e), Box::new(search_unary(t, pos)?));
            }
            Some(STok::Clause(_)) | Some(STok::Open) | Some(STok::Not) => {
                e = Search::And(Box::new(e), Box::new(search_unary(t, pos)?));
            }
            _ => return Ok(e),
        }
    }
}

fn search_unary(t: &[STok], pos: &mut usize) -> Result<Search, String> {
    match t.get(*pos).cloned() {
        Some(STok::Not) => {
            *pos += 1;
            Ok(Search::Not(Box::new(search_unary(t, pos)?)))
        }
        Some(STok::Open) => {
            *pos += 1;
            let e = search_or(t, pos)?;
            if t.get(*pos) != Some(&STok::Close) {
                return Err("unbalanced parentheses in $search".into());
            }
            *pos += 1;
            Ok(e)
        }
        Some(STok::Clause(c)) => {
            *pos += 1;
            Ok(match c.split_once(':') {
                Some((p, v)) if !p.is_empty() && p.chars().all(char::is_alphanumeric) => {
                    Search::Term(Some(p.to_string()), v.to_string())
                }
                _ => Search::Term(None, c),
            })
        }
        _ => Err("expected a search clause".into()),
    }
}

/// Splits text into the words the directory's tokenised search matches: at spaces,
/// symbols, digit runs and lower-to-upper case changes.
pub fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let boundary = match prev {
            None => false,
            Some(p) => {
                !c.is_alphanumeric()
                    || !p.is_alphanumeric()
                    || (p.is_lowercase() && c.is_uppercase())
                    || (p.is_ascii_digit() != c.is_ascii_digit())
            }
        };
        if boundary && !cur.is_empty() {
            out.push(cur.to_lowercase());
            cur.clear();
        }
        if c.is_alphanumeric() {
            cur.push(c);
        }
        prev = Some(c);
    }
    if !cur.is_empty() {
        out.push(cur.to_lowercase());
    }
    out
}

/// Whether every word of `term` starts some word of `text`.
pub fn words_match(text: &str, term: &str) -> bool {
    let have = words(text);
    let want = words(term);
    !want.is_empty()
        && want
            .iter()
            .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
}

// ---- $expand ----------------------------------------------------------------------------

/// `$expand=a,b($select=x,y;$top=2)`: the relationship names with their nested options.
pub fn parse_expand(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut cur = String::new();
    for c in s.chars().chain(std::iter::once(',')) {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            ',' if depth == 0 => {
                let item = std::mem::take(&mut cur);
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                match item.strip_suffix(')').and_then(|i| i.split_once('(')) {
                    Some((name, opts)) => out.push((name.trim().to_string(), opts.to_string())),
                    None => out.push((item.to_string(), String::new())),
                }
            }
            _ => cur.push(c),
        }
    }
    out
}

/// `$select=a,b` inside nested `$expand` options (`;`-separated).
pub fn nested_select(opts: &str) -> Option<Vec<String>> {
    opts.split(';').find_map(|o| {
        let (k, v) = o.split_once('=')?;
        let k = k.trim().trim_start_matches('$');
        k.eq_ignore_ascii_case("select").then(|| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
    })
}

// ---- the request's options --------------------------------------------------------------

/// `ConsistencyLevel: eventual`, which the directory's advanced queries need.
pub fn eventual(req: &Req) -> bool {
    req.header("consistencylevel")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

/// `$count=true`.
pub fn count_requested(req: &Req) -> bool {
    req.q("$count")
        .is_some_and(|c| c.eq_ignore_ascii_case("true"))
}

/// The parsed `$filter`, or the service's error for a clause it cannot parse.
pub fn filter(req: &Req, service: Service) -> Result<Option<Expr>, Resp> {
    match req.q("$filter") {
        None => Ok(None),
        Some(f) => Expr::parse(f).map(Some).map_err(|e| service.bad_filter(&e)),
    }
}

/// The parsed `$orderby`.
pub fn orderby(req: &Req, service: Service) -> Result<Option<OrderBy>, Resp> {
    match req.q("$orderby") {
        None => Ok(None),
        Some(o) => parse_orderby(o).map(Some).map_err(|e| match service {
            Service::Files => service.unsupported(&format!("Invalid $orderby: {e}")),
            _ => Resp::error(400, "BadRequest", &format!("Invalid $orderby: {e}")),
        }),
    }
}

/// The parsed `$search`.
pub fn search(req: &Req) -> Result<Option<Search>, Resp> {
    match req.q("$search") {
        None => Ok(None),
        Some(s) => Search::parse(s)
            .map(Some)
            .map_err(|e| Resp::error(400, "BadRequest", &format!("Invalid $search: {e}"))),
    }
}

// ---- what each collection answers ------------------------------------------------------

/// The kind of items a collection holds, which fixes the queries it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    User,
    Group,
    MailFolder,
    ContactFolder,
    Calendar,
    Message,
    Event,
    Contact,
    Thread,
    Post,
    Site,
    List,
    ListItem,
    Drive,
    DriveItem,
}

impl Entity {
    pub fn service(self) -> Service {
        match self {
            Entity::User | Entity::Group => Service::Directory,
            Entity::MailFolder
            | Entity::ContactFolder
            | Entity::Calendar
            | Entity::Message
            | Entity::Event
            | Entity::Contact
            | Entity::Thread
            | Entity::Post => Service::Outlook,
            Entity::Site | Entity::List | Entity::ListItem | Entity::Drive | Entity::DriveItem => {
                Service::Files
            }
        }
    }

    /// The resource name the directory uses in its messages (`'User'`).
    fn type_name(self) -> &'static str {
        match self {
            Entity::User => "User",
            Entity::Group => "Group",
            Entity::MailFolder => "mailFolders",
            Entity::ContactFolder => "contactFolders",
            Entity::Calendar => "calendars",
            Entity::Message => "messages",
            Entity::Event => "events",
            Entity::Contact => "contacts",
            Entity::Thread => "threads",
            Entity::Post => "posts",
            Entity::Site => "sites",
            Entity::List => "lists",
            Entity::ListItem => "listItems",
            Entity::Drive => "drives",
            Entity::DriveItem => "driveItems",
        }
    }
}

/// When the directory answers a `$filter` operator on a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Needs {
    /// By default.
    D,
    /// In advanced queries only (`ConsistencyLevel: eventual` and `$count`).
    A,
}

use Needs::{A, D};

/// A property's filter operators and when they are answered.
type FilterOps = &'static [(&'static str, Needs)];

/// Entra ID's `$filter` support for the properties the simulator renders; an operator not
/// listed is not supported. From Microsoft's `filter-directory-objects` table (users) and
/// the group resource page; `null` stands for `eq null`/`ne null`, `not` for `not(…)`,
/// `$count` for `prop/$count`.
const DIRECTORY_FILTERS: &[(Entity, &str, FilterOps)] = &[
    (
        Entity::User,
        "accountEnabled",
        &[
            ("eq", D),
            ("ne", A),
            ("not", A),
            ("ge", A),
            ("le", A),
            ("in", D),
        ],
    ),
    (
        Entity::User,
        "assignedLicenses",
        &[("eq", D), ("not", A), ("$count", A)],
    ),
    (
        Entity::User,
        "department",
        &[
            ("eq", D),
            ("ne", A),
            ("not", A),
            ("ge", D),
            ("le", D),
            ("in", D),
            ("startswith", D),
            ("null", A),
        ],
    ),
    (
        Entity::User,
        "displayName",
        &[
            ("eq", D),
            ("ne", A),
            ("not", A),
            ("in", D),
            ("startswith", D),
            ("null", A),
        ],
    ),
    (
        Entity::User,
        "id",
        &[("eq", D), ("ne", A), ("not", A), ("in", D)],
    ),
    (
        Entity::User,
        "jobTitle",
        &[
            ("eq", D),
            ("ne", A),
            ("ge", D),
            ("le", D),
            ("in", D),
            ("null", A),
        ],
    ),
    (
        Entity::User,
        "mail",
        &[
            ("eq", D),
            ("ne", A),
            ("ge", D),
            ("le", D),
            ("in", D),
            ("startswith", D),
            ("endswith", A),
        ],
    ),
    (
        Entity::User,
        "usageLocation",
        &[
            ("eq", D),
            ("ne", A),
            ("ge", D),
            ("le", D),
            ("in", D),
            ("startswith", D),
        ],
    ),
    (
        Entity::User,
        "userPrincipalName",
        &[
            ("eq", D),
            ("ne", A),
            ("le", D),
            ("in", D),
            ("startswith", D),
            ("endswith", A),
        ],
    ),
    (
        Entity::Group,
        "displayName",
        &[
            ("eq", D),
            ("ne", A),
            ("not", A),
            ("ge", D),
            ("le", D),
            ("in", D),
            ("startswith", D),
            ("null", D),
        ],
    ),
    (Entity::Group, "groupTypes", &[("eq", D), ("not", A)]),
    (
        Entity::Group,
        "id",
        &[("eq", D), ("ne", A), ("not", A), ("in", D)],
    ),
    (
        Entity::Group,
        "mail",
        &[
            ("eq", D),
            ("ne", A),
            ("not", A),
            ("ge", D),
            ("le", D),
            ("in", D),
            ("startswith", D),
            ("null", D),
        ],
    ),
    (
        Entity::Group,
        "mailEnabled",
        &[("eq", D), ("ne", A), ("not", A)],
    ),
    (
        Entity::Group,
        "mailNickname",
        &[
            ("eq", D),
            ("ne", A),
            ("not", A),
            ("ge", D),
            ("le", D),
            ("in", D),
            ("startswith", D),
            ("null", D),
        ],
    ),
    (
        Entity::Group,
        "resourceProvisioningOptions",
        &[("eq", D), ("not", A)],
    ),
    (
        Entity::Group,
        "securityEnabled",
        &[("eq", D), ("ne", A), ("not", A), ("in", D)],
    ),
];

/// Properties the directory sorts on by default (`$orderby`); with `$filter` or `$search`
/// sorting needs an advanced query.
const DIRECTORY_ORDER: &[(Entity, &str)] = &[
    (Entity::User, "displayName"),
    (Entity::User, "userPrincipalName"),
    (Entity::Group, "displayName"),
];

/// KQL properties of message `$search` the simulator serves (`search-query-parameter`).
const MESSAGE_SEARCH: &[&str] = &[
    "subject",
    "body",
    "from",
    "to",
    "cc",
    "bcc",
    "participants",
    "recipients",
    "importance",
    "hasAttachment",
    "hasAttachments",
];

/// The SharePoint error for a list field that is not indexed.
pub const NON_INDEXED: &str = "HonorNonIndexedQueriesWarningMayFailRandomly";

/// A collection's query options, checked against what its service answers.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub filter: Option<Expr>,
    pub orderby: Option<OrderBy>,
    pub search: Option<Search>,
    /// Relationships to expand, with their nested options.
    pub expand: Vec<(String, String)>,
    /// Whether the answer carries `@odata.count`.
    pub count: bool,
    /// Whether `$skip` was given.
    pub skip: bool,
}

impl Query {
    /// Whether a listing must see every member at once (sorted, searched, counted or
    /// skipped into) rather than page by page.
    pub fn whole(&self) -> bool {
        self.orderby.is_some() || self.search.is_some() || self.count || self.skip
    }

    /// The nested options of an expanded relationship, if it is expanded.
    pub fn expands(&self, name: &str) -> Option<&str> {
        self.expand
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, o)| o.as_str())
    }

    /// Whether an item passes `$filter` and `$search`.
    pub fn keep(&self, entity: Entity, v: &Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(v))
            && self
                .search
                .as_ref()
                .is_none_or(|s| s.matches(&|p, t| search_field(entity, v, p, t)))
    }

    /// Filters, searches and sorts a materialised listing.
    pub fn apply(&self, entity: Entity, items: Vec<Value>) -> Vec<Value> {
        let mut out: Vec<Value> = items.into_iter().filter(|v| self.keep(entity, v)).collect();
        if let Some(by) = &self.orderby {
            sort(&mut out, by);
        } else if self.search.is_some() && entity == Entity::Message {
            // Message search results come newest sent first, at most 1,000.
            sort(&mut out, &[(vec!["sentDateTime".to_string()], true)]);
            out.truncate(1000);
        }
        out
    }
}

/// Whether one `$search` clause matches an item.
fn search_field(entity: Entity, v: &Value, prop: Option<&str>, term: &str) -> bool {
    let s = |path: &[&str]| {
        let p: Vec<String> = path.iter().map(|x| x.to_string()).collect();
        text(&lookup(v, &p)).unwrap_or_default()
    };
    let has = |hay: String| hay.to_lowercase().contains(&term.to_lowercase());
    let people = |fields: &[&str]| {
        fields.iter().any(|f| {
            let list = match lookup(v, &[f.to_string()]) {
                Value::Array(a) => a,
                one => vec![one],
            };
            list.iter().any(|r| {
                has(text(&r["emailAddress"]["address"]).unwrap_or_default())
                    || words_match(&text(&r["emailAddress"]["name"]).unwrap_or_default(), term)
            })
        })
    };
    match entity {
        Entity::Message => match prop.map(str::to_ascii_lowercase).as_deref() {
            None => {
                words_match(&s(&["subject"]), term)
                    || words_match(&s(&["body", "content"]), term)
                    || people(&["from"])
            }
            Some("subject") => words_match(&s(&["subject"]), term),
            Some("body") => words_match(&s(&["body", "content"]), term),
            Some("from") => people(&["from"]),
            Some("to") => people(&["toRecipients"]),
            Some("cc") => people(&["ccRecipients"]),
            Some("bcc") => people(&["bccRecipients"]),
            Some("recipients") => people(&["toRecipients", "ccRecipients", "bccRecipients"]),
            Some("participants") => {
                people(&["from", "toRecipients", "ccRecipients", "bccRecipients"])
            }
            Some("importance") => s(&["importance"]).eq_ignore_ascii_case(term),
            Some("hasattachment") | Some("hasattachments") => {
                s(&["hasAttachments"]).eq_ignore_ascii_case(term)
            }
            Some(_) => false,
        },
        // The directory tokenises displayName and description, and matches other
        // properties from their start.
        _ => {
            let Some(p) = prop else {
                return false;
            };
            let value = text(&lookup(v, &[p.to_string()])).unwrap_or_default();
            if p.eq_ignore_ascii_case("displayName") || p.eq_ignore_ascii_case("description") {
                words_match(&value, term)
            } else {
                value.to_lowercase().starts_with(&term.to_lowercase())
            }
        }
    }
}

/// `$expand` (also spelt `expand`, as SharePoint's list APIs take it).
fn expand_option(req: &Req) -> Vec<(String, String)> {
    req.q("$expand")
        .or_else(|| req.q("expand"))
        .map(parse_expand)
        .unwrap_or_default()
}

/// An advanced directory query: `ConsistencyLevel: eventual` with `$count` (the parameter
/// or the `/$count` segment).
fn advanced(req: &Req) -> bool {
    eventual(req) && (count_requested(req) || req.path.ends_with("/$count"))
}

/// Reads and checks a listing's `$filter`, `$orderby`, `$search`, `$expand` and `$count`:
/// what the collection's service does not answer (or the simulator deliberately does not
/// serve, as `docs/simulator.md` lists) comes back as that service's error. `expandable`:
/// the relationships this collection expands.
pub fn collection(req: &Req, entity: Entity, expandable: &[&str]) -> Result<Query, Resp> {
    let service = entity.service();
    // A listing's later pages carry the first request's filter in their token.
    let filter_src = req
        .q("$filter")
        .map(str::to_string)
        .or_else(|| crate::paging::Tok::of(req).and_then(|t| t.f));
    let filter = match filter_src {
        Some(f) => Some(Expr::parse(&f).map_err(|e| service.bad_filter(&e))?),
        None => None,
    };
    let q = Query {
        filter,
        orderby: orderby(req, service)?,
        search: search(req)?,
        expand: expand_option(req),
        count: count_requested(req),
        skip: req.q("$skip").is_some(),
    };
    for (name, _) in &q.expand {
        if !expandable.iter().any(|e| e.eq_ignore_ascii_case(name)) {
            return Err(service.unsupported(&format!(
                "The simulator does not serve $expand={name} on {}.",
                entity.type_name()
            )));
        }
    }
    match service {
        Service::Directory => directory_rules(req, entity, q),
        Service::Outlook => outlook_rules(entity, q),
        Service::Files => files_rules(req, entity, q),
        // No entity of the query engine belongs to Teams: its handlers read their own queries.
        Service::Teams => Ok(q),
    }
}

/// The `$expand` of one item's GET, checked like a listing's.
pub fn item_expand(req: &Req, entity: Entity, expandable: &[&str]) -> Result<Query, Resp> {
    let expand = expand_option(req);
    for (name, _) in &expand {
        if !expandable.iter().any(|e| e.eq_ignore_ascii_case(name)) {
            return Err(entity.service().unsupported(&format!(
                "The simulator does not serve $expand={name} on {}.",
                entity.type_name()
            )));
        }
    }
    Ok(Query {
        expand,
        ..Query::default()
    })
}

fn directory_rules(req: &Req, entity: Entity, mut q: Query) -> Result<Query, Resp> {
    let service = Service::Directory;
    let adv = advanced(req);
    let needs_advanced = |op: &str| {
        service.unsupported(&format!(
            "Operator '{op}' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
        ))
    };
    if let Some(f) = &q.filter {
        for u in f.uses() {
            let prop = u.path.first().cloned().unwrap_or_default();
            let op = if u.null && (u.op == "eq" || u.op == "ne") {
                "null".to_string()
            } else {
                u.op.clone()
            };
            let support = DIRECTORY_FILTERS
                .iter()
                .find(|(e, p, _)| *e == entity && p.eq_ignore_ascii_case(&prop))
                .and_then(|(_, _, ops)| ops.iter().find(|(o, _)| *o == op))
                .map(|(_, s)| *s);
            match support {
                Some(D) => {}
                Some(A) if adv => {}
                Some(A) => return Err(needs_advanced(&op)),
                None => {
                    return Err(service.unsupported(&format!(
                        "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{}'.",
                        entity.type_name()
                    )));
                }
            }
        }
    }
    if let Some(s) = &q.search {
        if !eventual(req) {
            return Err(service.unsupported(
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            ));
        }
        if s.has_bare_term() {
            return Err(
                service.unsupported("Each $search clause names a property: \"displayName:text\".")
            );
        }
        for p in s.properties() {
            let filterable = DIRECTORY_FILTERS
                .iter()
                .any(|(e, x, _)| *e == entity && x.eq_ignore_ascii_case(&p));
            if !filterable {
                return Err(service.unsupported(&format!(
                    "Unsupported or invalid query search clause specified for property '{p}' of resource '{}'.",
                    entity.type_name()
                )));
            }
        }
    }
    if let Some(by) = &q.orderby {
        let sortable = by.iter().all(|(path, _)| {
            path.len() == 1
                && DIRECTORY_ORDER
                    .iter()
                    .any(|(e, p)| *e == entity && p.eq_ignore_ascii_case(&path[0]))
        });
        if !sortable || (q.filter.is_some() && !adv) {
            return Err(service.unsupported("Sorting not supported for current query."));
        }
    }
    // Without the advanced query parameters `$count=true` is ignored, not refused.
    q.count = q.count && eventual(req);
    Ok(q)
}

fn outlook_rules(entity: Entity, q: Query) -> Result<Query, Resp> {
    let service = Service::Outlook;
    if let Some(s) = &q.search {
        if entity != Entity::Message {
            return Err(service.unsupported(&format!(
                "The simulator serves $search on messages only, not on {}.",
                entity.type_name()
            )));
        }
        for p in s.properties() {
            if !MESSAGE_SEARCH.iter().any(|m| m.eq_ignore_ascii_case(&p)) {
                return Err(service.unsupported(&format!(
                    "The simulator does not serve the $search property '{p}' on messages."
                )));
            }
        }
    }
    // Exchange sorts filtered messages itself: a `$orderby` must lead the `$filter`
    // (`user-list-messages`: "Using filter and orderby in the same query").
    if entity == Entity::Message
        && let (Some(f), Some(by)) = (&q.filter, &q.orderby)
    {
        let mut filtered: Vec<String> = Vec::new();
        for u in f.uses() {
            let p = u.path.join("/").to_ascii_lowercase();
            if !filtered.contains(&p) {
                filtered.push(p);
            }
        }
        let sorted: Vec<String> = by
            .iter()
            .map(|(p, _)| p.join("/").to_ascii_lowercase())
            .collect();
        if filtered.len() < sorted.len() || filtered[..sorted.len()] != sorted[..] {
            return Err(Resp::error(
                400,
                "InefficientFilter",
                "The restriction or sort order is too complex for this operation.",
            ));
        }
    }
    Ok(q)
}

fn files_rules(req: &Req, entity: Entity, q: Query) -> Result<Query, Resp> {
    let service = Service::Files;
    if q.search.is_some() {
        return Err(service.unsupported(&format!(
            "The simulator does not serve $search on {}.",
            entity.type_name()
        )));
    }
    match entity {
        // OneDrive for Business filters children by name only.
        Entity::DriveItem => {
            if let Some(f) = &q.filter
                && f.uses().iter().any(|u| {
                    !u.path
                        .first()
                        .is_some_and(|p| p.eq_ignore_ascii_case("name"))
                })
            {
                return Err(Resp::error(400, "notSupported", "Operation not supported"));
            }
        }
        // List fields are not indexed: SharePoint filters and sorts on them only when
        // the client accepts that such queries may fail on large lists.
        Entity::ListItem => {
            let mut paths: Vec<Vec<String>> = q
                .filter
                .iter()
                .flat_map(|f| f.uses())
                .map(|u| u.path)
                .collect();
            paths.extend(q.orderby.iter().flatten().map(|(p, _)| p.clone()));
            let honoured = req.prefers(NON_INDEXED);
            for p in paths {
                if p.len() == 2 && p[0].eq_ignore_ascii_case("fields") && !honoured {
                    return Err(service.unsupported(&format!(
                        "Field '{}' cannot be referenced in filter or orderby as it is not indexed. Provide the 'Prefer: {NON_INDEXED}' header to allow this, but be warned that such queries may fail on large lists.",
                        p[1]
                    )));
                }
            }
        }
        _ => {
            if q.filter.is_some() || q.orderby.is_some() {
                return Err(service.unsupported(&format!(
                    "The simulator does not serve $filter or $orderby on {}.",
                    entity.type_name()
                )));
            }
        }
    }
    Ok(q)
}

/// Checks a delta request's options: `messages/delta` filters on `receivedDateTime ge|gt`
/// only; other deltas take `$select` and `$top` (and `$expand` where listed) only.
pub fn delta(req: &Req, entity: Entity) -> Result<Option<Expr>, Resp> {
    let service = entity.service();
    let first = crate::paging::Tok::of(req).is_none();
    if first {
        let expands_fields = entity == Entity::ListItem
            && expand_option(req)
                .iter()
                .all(|(n, _)| n.eq_ignore_ascii_case("fields"));
        for opt in ["$orderby", "$search", "$expand", "changeType"] {
            if req.q(opt).is_some() && !(opt == "$expand" && expands_fields) {
                return Err(service.unsupported(&format!(
                    "The simulator does not serve {opt} on {} delta.",
                    entity.type_name()
                )));
            }
        }
    }
    let src = req
        .q("$filter")
        .map(str::to_string)
        .or_else(|| crate::paging::Tok::of(req).and_then(|t| t.f));
    let Some(src) = src else {
        return Ok(None);
    };
    let refused = || {
        match entity {
        Entity::Message => service.unsupported(
            "The '$filter' parameter value is not supported for 'Messages' resource; only a value of 'receivedDateTime ge value' is supported.",
        ),
        _ => service.unsupported(&format!(
            "The simulator does not serve $filter on {} delta.",
            entity.type_name()
        )),
    }
    };
    let expr = Expr::parse(&src).map_err(|_| refused())?;
    match &expr {
        Expr::Cmp(CmpOp::Ge | CmpOp::Gt, Operand::Prop(p), Operand::Lit(Lit::Str(_)))
            if entity == Entity::Message
                && p.len() == 1
                && p[0].eq_ignore_ascii_case("receivedDateTime") =>
        {
            Ok(Some(expr))
        }
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(f: &str, v: &Value) -> bool {
        Expr::parse(f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .matches(v)
    }

    #[test]
    fn filters_compare_strings_numbers_dates_and_nulls() {
        let v = json!({"subject": "Let's meet", "size": 10, "isRead": false,
            "receivedDateTime": "2024-03-01T10:00:00Z", "mail": null,
            "from": {"emailAddress": {"address": "A@x.com"}}});
        assert!(m("subject eq 'let''s meet'", &v));
        assert!(m("Subject ne 'x' and size ge 10 and size lt 11", &v));
        assert!(m(
            "receivedDateTime ge 2024-03-01 and receivedDateTime lt 2024-03-02T00:00:00Z",
            &v
        ));
        assert!(m("mail eq null and not (isRead)", &v));
        assert!(m("isRead eq false", &v));
        assert!(m("from/emailAddress/address eq 'a@x.com'", &v));
        assert!(m(
            "startswith(subject,'let') and contains(tolower(subject), 'MEET')",
            &v
        ));
        assert!(m("startswith(subject,'let') eq true", &v));
        assert!(!m("endswith(subject,'let')", &v));
        assert!(m("size in (1, 10)", &v));
        assert!(m("(size eq 1 or size eq 10) and subject ne null", &v));
        // What restores ask to find a message already there.
        let msg = json!({"internetMessageId": "<a.1@x>"});
        assert!(m("internetMessageId eq '<a.1@x>'", &msg));
        assert!(!m("internetMessageId eq '<a.2@x>'", &msg));
    }

    #[test]
    fn lambdas_run_over_collections() {
        let g = json!({"groupTypes": ["Unified"], "assignedLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}]});
        assert!(m("groupTypes/any(c:c eq 'Unified')", &g));
        assert!(m("groupTypes/any(c: c eq 'unified')", &g));
        assert!(!m("groupTypes/any(c:c eq 'DynamicMembership')", &g));
        assert!(m(
            "assignedLicenses/any(x:x/skuId eq c7df2760-2c81-4ef7-b578-5b5392b571df)",
            &g
        ));
        assert!(m("assignedLicenses/$count eq 1", &g));
        let uses = Expr::parse("groupTypes/any(c:c eq 'Unified') and not(mail eq 'x')")
            .unwrap()
            .uses();
        assert_eq!(uses[0].path, vec!["groupTypes".to_string()]);
        assert_eq!(uses[1].op, "not");
    }

    #[test]
    fn bad_filters_are_refused() {
        for f in ["", "subject eq", "subject eq 'x", "(a eq 1", "a eq 1 b"] {
            assert!(Expr::parse(f).is_err(), "{f}");
        }
    }

    #[test]
    fn orderby_sorts_without_case_and_by_several_keys() {
        let mut v = vec![
            json!({"n": "b", "k": 1}),
            json!({"n": "A", "k": 2}),
            json!({"n": "a", "k": 1}),
        ];
        sort(&mut v, &parse_orderby("n, k desc").unwrap());
        assert_eq!(v[0]["k"], 2);
        assert_eq!(v[2]["n"], "b");
        assert!(parse_orderby("n sideways").is_err());
    }

    #[test]
    fn search_clauses_and_words() {
        let s = Search::parse("\"displayName:one video\" OR \"mail:onev\"").unwrap();
        assert_eq!(s.properties(), vec!["displayName", "displayName", "mail"]);
        let s = Search::parse("pizza").unwrap();
        assert!(s.has_bare_term());
        assert_eq!(
            words("HelloWorld hello.world 123go"),
            vec!["hello", "world", "hello", "world", "123", "go"]
        );
        assert!(words_match("Adele Vance", "ade"));
        assert!(!words_match("Adele Vance", "van x"));
    }

    #[test]
    fn expand_items_keep_their_options() {
        assert_eq!(
            parse_expand("fields($select=Title,Status),children"),
            vec![
                ("fields".to_string(), "$select=Title,Status".to_string()),
                ("children".to_string(), String::new())
            ]
        );
        assert_eq!(
            nested_select("$select=Title,Status;$top=2"),
            Some(vec!["Title".to_string(), "Status".to_string()])
        );
    }
}
