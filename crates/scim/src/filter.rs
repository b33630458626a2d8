//! The filter language of RFC 7644 §3.4.2.2 and the PATCH `path` of §3.5.2: parsers
//! ([`Filter::parse`], [`Path::parse`], [`AttrPath::parse`]) and an evaluator
//! ([`Filter::matches`]) over a resource as JSON.
//!
//! Grammar, as parsed: `or` binds loosest, then `and`, then `not ( … )`; parentheses
//! group. Operators, `and`/`or`/`not` and attribute names are case-insensitive; values
//! are JSON (strings with escapes, numbers, `true`/`false`/`null`, the last three in any
//! case). Attribute paths may carry a schema URN prefix
//! (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`) and one
//! sub-attribute (`name.givenName`). Value paths `emails[type eq "work"]` are filters; as
//! an extension of the ABNF, `emails[type eq "work"].value eq "x"` is accepted too and
//! means an element that matches the bracket and whose `value` equals `"x"`. Errors
//! are `400 invalidFilter` (`invalidPath` for paths) naming the 1-based character
//! position and what was expected there.
//!
//! Evaluation rules (decisions on points the RFC leaves open are marked *decision*):
//! - attribute names match case-insensitively (RFC 7643 §2.1);
//! - strings compare case-insensitively unless the attribute is `caseExact` in the
//!   [`crate::schema`] table: per RFC 7643 §3.1 that is `id` and `externalId` (and
//!   `meta.resourceType`, `meta.location`, `meta.version`); attributes the table does
//!   not know are treated as `caseExact=false`;
//! - a multi-valued attribute matches if any of its values matches; a complex value
//!   compared without a sub-attribute is compared through its `value` sub-attribute;
//! - `pr` is true when the attribute has a value that is not null, not `""`, not `[]`
//!   and not an object without such a value;
//! - `gt`/`ge`/`lt`/`le` compare `dateTime` attributes as instants (and, for attributes
//!   the table does not know, strings that both parse as RFC 3339 instants), numbers
//!   numerically and other strings lexically; on attributes the table says are boolean
//!   they are refused by the parser with `invalidFilter`, as §3.4.2.2 requires, and on
//!   other boolean values they never match;
//! - booleans match the strings `"True"`/`"False"` in any case, either side (Entra);
//! - *decision*: `ne` is the negation of `eq`: it matches when the attribute is absent
//!   and, for multi-valued attributes, when no value equals;
//! - *decision*: `eq null` matches an unassigned attribute and `ne null` an assigned one
//!   (RFC 7643 §2.5 makes null and unassigned the same state); other operators never
//!   match null.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::json::{get_ci, lenient_bool, member_ci};
use crate::schema::{self, AttributeDef, AttributeType};

/// An attribute path: optional schema URN, attribute name and optional sub-attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, as written (`None` when absent).
    pub schema: Option<String>,
    /// The attribute name, as written.
    pub name: String,
    /// The sub-attribute name, as written.
    pub sub_attribute: Option<String>,
}

impl AttrPath {
    /// Parses a bare attribute path such as `name.givenName` (errors are `invalidPath`).
    pub fn parse(text: &str) -> Result<AttrPath, ScimError> {
        let trimmed = text.trim();
        parse_attr_path(trimmed, 1, ScimType::InvalidPath)
    }

    /// The attribute's definition in the [`crate::schema`] table, if it has one.
    pub fn definition(&self) -> Option<&'static AttributeDef> {
        let top = schema::find(self.schema.as_deref(), &self.name)?;
        match &self.sub_attribute {
            Some(sub) => top.sub_attribute(sub),
            None => Some(top),
        }
    }

    /// Whether string values of this attribute compare case-sensitively.
    pub fn case_exact(&self) -> bool {
        self.definition().is_some_and(|def| def.case_exact)
    }

    /// The path in canonical spelling: no core-schema prefix, names as the table spells
    /// them, e.g. `userName`, `name.givenName`, `urn:…:enterprise:2.0:User:department`.
    pub fn canonical(&self) -> String {
        let schema = self
            .schema
            .as_deref()
            .filter(|urn| !schema::is_core_schema(urn));
        let top = schema::find(schema, &self.name);
        let mut out = String::new();
        if let Some(urn) = schema {
            out.push_str(schema::extension(urn).map_or(urn, |ext| ext.id));
            out.push(':');
        }
        out.push_str(top.map_or(self.name.as_str(), |def| def.name));
        if let Some(sub) = &self.sub_attribute {
            out.push('.');
            let def = top.and_then(|def| def.sub_attribute(sub));
            out.push_str(def.map_or(sub.as_str(), |def| def.name));
        }
        out
    }

    /// Whether this path names the same attribute as `other` (e.g. `"userName"`), ignoring
    /// case and the core schema prefix.
    pub fn is(&self, other: &str) -> bool {
        AttrPath::parse(other)
            .is_ok_and(|other| other.canonical().eq_ignore_ascii_case(&self.canonical()))
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attribute {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// The operator as written in a filter (`eq`, `ne`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    fn from_word(word: &str) -> Option<CompareOp> {
        let op = match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        };
        Some(op)
    }

    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Self::Eq => ordering == Ordering::Equal,
            Self::Ne => ordering != Ordering::Equal,
            Self::Gt => ordering == Ordering::Greater,
            Self::Ge => ordering != Ordering::Less,
            Self::Lt => ordering == Ordering::Less,
            Self::Le => ordering != Ordering::Greater,
            Self::Co | Self::Sw | Self::Ew => false,
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr pr`.
    Present(AttrPath),
    /// `attr op value`.
    Compare(AttrPath, CompareOp, Value),
    /// `attr[filter]`: some value of the multi-valued `attr` matches the inner filter,
    /// whose paths name sub-attributes.
    ValuePath(AttrPath, Box<Filter>),
    /// Both match.
    And(Box<Filter>, Box<Filter>),
    /// Either matches.
    Or(Box<Filter>, Box<Filter>),
    /// The inner filter does not match.
    Not(Box<Filter>),
}

impl Filter {
    /// How tightly the filter's top operator binds: `or` 1, `and` 2, the rest 3.
    fn precedence(&self) -> u8 {
        match self {
            Self::Or(_, _) => 1,
            Self::And(_, _) => 2,
            _ => 3,
        }
    }

    fn write_operand(&self, f: &mut fmt::Formatter<'_>, wrap: bool) -> fmt::Result {
        if wrap {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// The filter in the RFC's syntax, parenthesised only where needed, so that
/// `Filter::parse(&filter.to_string())` gives the filter back (a push client builds
/// its queries this way).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Present(path) => write!(f, "{path} pr"),
            Self::Compare(path, op, value) => write!(f, "{path} {} {value}", op.as_str()),
            Self::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::And(left, right) | Self::Or(left, right) => {
                let (word, own) = if matches!(self, Self::And(_, _)) {
                    ("and", 2)
                } else {
                    ("or", 1)
                };
                left.write_operand(f, left.precedence() < own)?;
                write!(f, " {word} ")?;
                right.write_operand(f, right.precedence() <= own)
            }
        }
    }
}

/// Where a filter is evaluated: against a resource, or inside an element of a
/// multi-valued attribute (whose definition, if known, gives the sub-attributes).
#[derive(Clone, Copy)]
enum Scope {
    Resource,
    Element(Option<&'static AttributeDef>),
}

impl Scope {
    fn definition(self, path: &AttrPath) -> Option<&'static AttributeDef> {
        match self {
            Self::Resource => path.definition(),
            Self::Element(parent) => {
                let def = parent?.sub_attribute(&path.name)?;
                match &path.sub_attribute {
                    Some(sub) => def.sub_attribute(sub),
                    None => Some(def),
                }
            }
        }
    }
}

impl Filter {
    /// Parses a filter (errors are `400 invalidFilter` naming the position).
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        let mut parser = Parser::new(text, ScimType::InvalidFilter)?;
        let filter = parser.parse_or()?;
        parser.expect_end("\"and\", \"or\" or the end of the filter")?;
        filter.check_types(Scope::Resource)?;
        Ok(filter)
    }

    /// Whether the resource (as JSON) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        self.eval(resource, Scope::Resource)
    }

    /// Whether an element of the multi-valued attribute `parent` matches (paths name
    /// its sub-attributes).
    pub(crate) fn matches_element(
        &self,
        element: &Value,
        parent: Option<&'static AttributeDef>,
    ) -> bool {
        self.eval(element, Scope::Element(parent))
    }

    /// For `attr eq "string"`, the path and the string: the common lookups
    /// (`userName eq "x"`, `externalId eq "y"`) a store answers with an index.
    pub fn as_equality(&self) -> Option<(&AttrPath, &str)> {
        match self {
            Self::Compare(path, CompareOp::Eq, Value::String(value)) => Some((path, value)),
            _ => None,
        }
    }

    /// For an element filter made only of `sub eq value` joined by `and`, those
    /// sub-attributes and values: the element a PATCH creates when none matches.
    pub(crate) fn equality_template(&self) -> Option<Map<String, Value>> {
        match self {
            Self::Compare(path, CompareOp::Eq, value)
                if path.schema.is_none() && path.sub_attribute.is_none() =>
            {
                let mut out = Map::new();
                out.insert(path.name.clone(), value.clone());
                Some(out)
            }
            Self::And(left, right) => {
                let mut out = left.equality_template()?;
                out.extend(right.equality_template()?);
                Some(out)
            }
            _ => None,
        }
    }

    /// Refuses `gt`/`ge`/`lt`/`le` on attributes the table says are boolean.
    fn check_types(&self, scope: Scope) -> Result<(), ScimError> {
        match self {
            Self::And(left, right) | Self::Or(left, right) => {
                left.check_types(scope)?;
                right.check_types(scope)
            }
            Self::Not(inner) => inner.check_types(scope),
            Self::ValuePath(path, inner) => {
                inner.check_types(Scope::Element(scope.definition(path)))
            }
            Self::Compare(path, op, _)
                if matches!(
                    op,
                    CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
                ) && scope
                    .definition(path)
                    .is_some_and(|def| def.kind == AttributeType::Boolean) =>
            {
                Err(ScimError::bad_request(
                    ScimType::InvalidFilter,
                    format!(
                        "invalid filter: {path} is boolean, so it cannot be compared with {}",
                        op.as_str()
                    ),
                ))
            }
            Self::Compare(..) | Self::Present(_) => Ok(()),
        }
    }

    fn eval(&self, node: &Value, scope: Scope) -> bool {
        match self {
            Self::And(left, right) => left.eval(node, scope) && right.eval(node, scope),
            Self::Or(left, right) => left.eval(node, scope) || right.eval(node, scope),
            Self::Not(inner) => !inner.eval(node, scope),
            Self::Present(path) => values(node, path, scope).into_iter().any(is_present),
            Self::Compare(path, op, expected) => {
                let found = values(node, path, scope);
                let def = scope.definition(path);
                match (op, expected) {
                    (CompareOp::Eq, Value::Null) => !found.into_iter().any(is_present),
                    (CompareOp::Ne, Value::Null) => found.into_iter().any(is_present),
                    (_, Value::Null) => false,
                    (CompareOp::Ne, _) => !found
                        .into_iter()
                        .any(|value| compare(value, CompareOp::Eq, expected, def)),
                    _ => found
                        .into_iter()
                        .any(|value| compare(value, *op, expected, def)),
                }
            }
            Self::ValuePath(path, inner) => {
                let parent = scope.definition(path);
                values(node, path, scope)
                    .into_iter()
                    .any(|element| inner.eval(element, Scope::Element(parent)))
            }
        }
    }
}

/// The values a path reaches in `node`, arrays flattened.
fn values<'a>(node: &'a Value, path: &AttrPath, scope: Scope) -> Vec<&'a Value> {
    let top = match (scope, &path.schema) {
        (Scope::Resource, Some(urn)) if !schema::is_core_schema(urn) => {
            member_ci(node, urn).and_then(|ext| member_ci(ext, &path.name))
        }
        _ => member_ci(node, &path.name),
    };
    let mut out = Vec::new();
    let Some(top) = top else { return out };
    let items: Vec<&Value> = match top {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match &path.sub_attribute {
        None => out = items,
        Some(sub) => {
            for item in items {
                match member_ci(item, sub) {
                    Some(Value::Array(inner)) => out.extend(inner),
                    Some(value) => out.push(value),
                    None => {}
                }
            }
        }
    }
    out
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => members.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(
    actual: &Value,
    op: CompareOp,
    expected: &Value,
    def: Option<&'static AttributeDef>,
) -> bool {
    let actual = match actual {
        Value::Object(members) => match get_ci(members, "value") {
            Some(value) => value,
            None => return false,
        },
        other => other,
    };
    if actual.is_boolean() || expected.is_boolean() {
        return match (lenient_bool(actual), lenient_bool(expected), op) {
            (Some(left), Some(right), CompareOp::Eq) => left == right,
            _ => false,
        };
    }
    match (actual, expected) {
        (Value::Number(left), Value::Number(right)) => match (left.as_f64(), right.as_f64()) {
            (Some(left), Some(right)) => left
                .partial_cmp(&right)
                .is_some_and(|ordering| op.accepts(ordering)),
            _ => false,
        },
        (Value::String(left), Value::String(right)) => compare_strings(left, op, right, def),
        _ => false,
    }
}

fn compare_strings(
    actual: &str,
    op: CompareOp,
    expected: &str,
    def: Option<&'static AttributeDef>,
) -> bool {
    let temporal = match def {
        Some(def) => def.kind == AttributeType::DateTime,
        None => true,
    };
    if temporal && !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
        let instants = (
            actual.parse::<jiff::Timestamp>(),
            expected.parse::<jiff::Timestamp>(),
        );
        if let (Ok(left), Ok(right)) = instants {
            return op.accepts(left.cmp(&right));
        }
    }
    let case_exact = def.is_some_and(|def| def.case_exact);
    let (actual, expected) = if case_exact {
        (actual.to_owned(), expected.to_owned())
    } else {
        (actual.to_lowercase(), expected.to_lowercase())
    };
    match op {
        CompareOp::Co => actual.contains(&expected),
        CompareOp::Sw => actual.starts_with(&expected),
        CompareOp::Ew => actual.ends_with(&expected),
        _ => op.accepts(actual.cmp(&expected)),
    }
}

/// A PATCH target (RFC 7644 §3.5.2 `PATH = attrPath / valuePath [subAttr]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The attribute (with its own sub-attribute when there is no filter).
    pub attr: AttrPath,
    /// The value filter in brackets, selecting elements of a multi-valued attribute.
    pub filter: Option<Filter>,
    /// The sub-attribute after the brackets (`emails[…].value`).
    pub sub_attribute: Option<String>,
}

impl Path {
    /// Parses a PATCH path (errors are `400 invalidPath` naming the position).
    pub fn parse(text: &str) -> Result<Path, ScimError> {
        let mut parser = Parser::new(text, ScimType::InvalidPath)?;
        let token = parser.next();
        let attr = match token.tok {
            Tok::Word(word) => parse_attr_path(&word, token.pos, ScimType::InvalidPath)?,
            other => return Err(parser.error(token.pos, "an attribute path", &other)),
        };
        let mut path = Path {
            attr,
            filter: None,
            sub_attribute: None,
        };
        if parser.peek().tok == Tok::LBracket {
            parser.next();
            if path.attr.sub_attribute.is_some() {
                let pos = parser.peek().pos;
                return Err(parser.fail(pos, "a value filter on an attribute, not a sub-attribute"));
            }
            let filter = parser.parse_or()?;
            filter.check_types(Scope::Element(path.attr.definition()))?;
            path.filter = Some(filter);
            parser.expect(&Tok::RBracket, "\"]\"")?;
            path.sub_attribute = parser.trailing_sub_attribute()?;
        }
        parser.expect_end("the end of the path")?;
        Ok(path)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character position of the token's first character.
    pos: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::LBracket => "\"[\"".into(),
        Tok::RBracket => "\"]\"".into(),
        Tok::Word(word) => format!("\"{word}\""),
        Tok::Str(text) => format!("the string {}", Value::String(text.clone())),
        Tok::End => "the end of the input".into(),
    }
}

fn what(kind: ScimType) -> &'static str {
    if kind == ScimType::InvalidPath {
        "path"
    } else {
        "filter"
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '$' | '+')
}

fn lex(input: &str, kind: ScimType) -> Result<Vec<Token>, ScimError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&(start, c)) = chars.get(i) {
        let pos = i + 1;
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = simple {
            tokens.push(Token { tok, pos });
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let mut j = i + 1;
            let end = loop {
                match chars.get(j) {
                    None => {
                        return Err(ScimError::bad_request(
                            kind,
                            format!(
                                "invalid {} at position {pos}: expected a closing '\"' for the string starting here, found the end of the input",
                                what(kind)
                            ),
                        ));
                    }
                    Some(&(_, '\\')) => j += 2,
                    Some(&(at, '"')) => break at,
                    Some(_) => j += 1,
                }
            };
            let literal = &input[start..=end];
            let text: String = serde_json::from_str(literal).map_err(|error| {
                ScimError::bad_request(
                    kind,
                    format!(
                        "invalid {} at position {pos}: expected a JSON string, found {literal} ({error})",
                        what(kind)
                    ),
                )
            })?;
            tokens.push(Token {
                tok: Tok::Str(text),
                pos,
            });
            i = j + 1;
        } else if is_word_char(c) {
            let mut j = i;
            while chars.get(j).is_some_and(|&(_, c)| is_word_char(c)) {
                j += 1;
            }
            let end = chars.get(j).map_or(input.len(), |&(at, _)| at);
            tokens.push(Token {
                tok: Tok::Word(input[start..end].to_owned()),
                pos,
            });
            i = j;
        } else {
            return Err(ScimError::bad_request(
                kind,
                format!(
                    "invalid {} at position {pos}: unexpected character '{c}'",
                    what(kind)
                ),
            ));
        }
    }
    tokens.push(Token {
        tok: Tok::End,
        pos: chars.len() + 1,
    });
    Ok(tokens)
}

fn valid_name(name: &str) -> bool {
    let body = name.strip_prefix('$').unwrap_or(name);
    let mut chars = body.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn parse_attr_path(word: &str, pos: usize, kind: ScimType) -> Result<AttrPath, ScimError> {
    let fail = |expected: &str| {
        ScimError::bad_request(
            kind,
            format!(
                "invalid {} at position {pos}: expected {expected}, found \"{word}\"",
                what(kind)
            ),
        )
    };
    let (schema, rest) = match word.rfind(':') {
        Some(at) => (Some(&word[..at]), &word[at + 1..]),
        None => (None, word),
    };
    if schema.is_some_and(|urn| !urn.to_ascii_lowercase().starts_with("urn:")) {
        return Err(fail("an attribute path (a schema prefix is a URN)"));
    }
    let mut parts = rest.split('.');
    let name = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() || !valid_name(name) || sub.is_some_and(|sub| !valid_name(sub)) {
        return Err(fail("an attribute path such as userName or name.givenName"));
    }
    Ok(AttrPath {
        schema: schema.map(str::to_owned),
        name: name.to_owned(),
        sub_attribute: sub.map(str::to_owned),
    })
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    kind: ScimType,
}

impl Parser {
    fn new(text: &str, kind: ScimType) -> Result<Parser, ScimError> {
        Ok(Parser {
            tokens: lex(text, kind)?,
            at: 0,
            kind,
        })
    }

    fn peek(&self) -> &Token {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[self.at.min(last)]
    }

    fn peek_second(&self) -> Option<&Tok> {
        self.tokens.get(self.at + 1).map(|token| &token.tok)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    fn fail(&self, pos: usize, message: &str) -> ScimError {
        ScimError::bad_request(
            self.kind,
            format!(
                "invalid {} at position {pos}: expected {message}",
                what(self.kind)
            ),
        )
    }

    fn error(&self, pos: usize, expected: &str, found: &Tok) -> ScimError {
        ScimError::bad_request(
            self.kind,
            format!(
                "invalid {} at position {pos}: expected {expected}, found {}",
                what(self.kind),
                describe(found)
            ),
        )
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> Result<(), ScimError> {
        let token = self.next();
        if &token.tok == tok {
            Ok(())
        } else {
            Err(self.error(token.pos, expected, &token.tok))
        }
    }

    fn expect_end(&mut self, expected: &str) -> Result<(), ScimError> {
        self.expect(&Tok::End, expected)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn parse_or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_and()?;
        while self.peek_keyword("or") {
            self.next();
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_unary()?;
        while self.peek_keyword("and") {
            self.next();
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Filter, ScimError> {
        if self.peek_keyword("not") && self.peek_second() == Some(&Tok::LParen) {
            self.next();
            self.next();
            let inner = self.parse_or()?;
            self.expect(&Tok::RParen, "\"and\", \"or\" or \")\"")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        let token = self.next();
        match token.tok {
            Tok::LParen => {
                let inner = self.parse_or()?;
                self.expect(&Tok::RParen, "\"and\", \"or\" or \")\"")?;
                Ok(inner)
            }
            Tok::Word(word) => {
                let path = parse_attr_path(&word, token.pos, self.kind)?;
                self.parse_after_path(path)
            }
            other => Err(self.error(token.pos, "an attribute path, \"not (\" or \"(\"", &other)),
        }
    }

    fn parse_after_path(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        if self.peek().tok == Tok::LBracket {
            let bracket = self.next();
            if path.sub_attribute.is_some() {
                return Err(self.fail(
                    bracket.pos,
                    "a value filter on an attribute, not on a sub-attribute",
                ));
            }
            let inner = self.parse_or()?;
            self.expect(&Tok::RBracket, "\"and\", \"or\" or \"]\"")?;
            let inner = match self.trailing_sub_attribute()? {
                Some(sub) => {
                    let sub_path = AttrPath {
                        schema: None,
                        name: sub,
                        sub_attribute: None,
                    };
                    let test = self.parse_operation(sub_path)?;
                    Filter::And(Box::new(inner), Box::new(test))
                }
                None => inner,
            };
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.parse_operation(path)
    }

    fn trailing_sub_attribute(&mut self) -> Result<Option<String>, ScimError> {
        let token = self.peek().clone();
        let Tok::Word(word) = &token.tok else {
            return Ok(None);
        };
        let Some(name) = word.strip_prefix('.') else {
            return Ok(None);
        };
        if !valid_name(name) {
            return Err(self.error(token.pos, "a sub-attribute name after \"]\"", &token.tok));
        }
        self.next();
        Ok(Some(name.to_owned()))
    }

    fn parse_operation(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        let token = self.next();
        let op = match &token.tok {
            Tok::Word(word) if word.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Tok::Word(word) => CompareOp::from_word(word),
            _ => None,
        };
        let Some(op) = op else {
            return Err(self.error(
                token.pos,
                "an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)",
                &token.tok,
            ));
        };
        let value = self.parse_value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn parse_value(&mut self) -> Result<Value, ScimError> {
        let token = self.next();
        let value = match &token.tok {
            Tok::Str(text) => Some(Value::String(text.clone())),
            Tok::Word(word) => match word.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                "null" => Some(Value::Null),
                _ => serde_json::from_str::<serde_json::Number>(word)
                    .ok()
                    .map(Value::Number),
            },
            _ => None,
        };
        value.ok_or_else(|| {
            self.error(
                token.pos,
                "a value (a string in double quotes, a number, true, false or null)",
                &token.tok,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(name: &str) -> AttrPath {
        AttrPath::parse(name).unwrap()
    }

    #[test]
    fn parses_a_comparison() {
        assert_eq!(
            Filter::parse("userName eq \"bjensen\"").unwrap(),
            Filter::Compare(path("userName"), CompareOp::Eq, json!("bjensen"))
        );
    }

    #[test]
    fn operators_and_keywords_ignore_case() {
        let filter = Filter::parse("userName EQ \"a\" AND NOT (active Pr)").unwrap();
        assert!(matches!(filter, Filter::And(_, ref right) if matches!(**right, Filter::Not(_))));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let filter = Filter::parse("a eq 1 or b eq 2 and c eq 3").unwrap();
        let Filter::Or(_, right) = filter else {
            panic!("expected or at the top")
        };
        assert!(matches!(*right, Filter::And(_, _)));
    }

    #[test]
    fn splits_schema_prefix_at_the_last_colon() {
        let parsed =
            path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber");
        assert_eq!(
            parsed.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(parsed.name, "employeeNumber");
        assert!(
            parsed.is("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:EMPLOYEENUMBER")
        );
        let core = path("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName");
        assert_eq!(core.canonical(), "name.givenName");
    }

    #[test]
    fn parses_numbers_literals_and_escapes() {
        let Filter::Compare(_, _, value) = Filter::parse(r#"x eq "a\"b\u00e9""#).unwrap() else {
            panic!("expected a comparison")
        };
        assert_eq!(value, json!("a\"bé"));
        let Filter::Compare(_, _, value) = Filter::parse("x ge -1.5e2").unwrap() else {
            panic!("expected a comparison")
        };
        assert_eq!(value, json!(-150.0));
        let Filter::Compare(_, _, value) = Filter::parse("x eq NULL").unwrap() else {
            panic!("expected a comparison")
        };
        assert_eq!(value, Value::Null);
    }

    #[test]
    fn positions_count_characters() {
        let error = Filter::parse("x eq \"é\" bad").unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
        assert!(error.detail.contains("position 10"), "{}", error.detail);
    }

    #[test]
    fn rejects_bad_attribute_names() {
        for bad in ["1abc eq 1", "a.b.c eq 1", "foo:bar eq 1", "a..b eq 1"] {
            assert_eq!(
                Filter::parse(bad).unwrap_err().scim_type,
                Some(ScimType::InvalidFilter),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_attributes_compare_case_insensitively() {
        let filter = Filter::parse("title eq \"BOSS\"").unwrap();
        assert!(filter.matches(&json!({"title": "boss"})));
    }

    #[test]
    fn ne_and_null() {
        let resource = json!({"displayName": "Ann", "nickName": null});
        assert!(Filter::parse("title ne \"x\"").unwrap().matches(&resource));
        assert!(
            Filter::parse("nickName eq null")
                .unwrap()
                .matches(&resource)
        );
        assert!(
            Filter::parse("displayName ne null")
                .unwrap()
                .matches(&resource)
        );
        assert!(
            !Filter::parse("displayName gt null")
                .unwrap()
                .matches(&resource)
        );
    }

    #[test]
    fn ordering_booleans_is_an_invalid_filter() {
        let error = Filter::parse("active gt false").unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
        assert!(error.detail.contains("active"), "{}", error.detail);
        assert!(Filter::parse("emails[primary le true]").is_err());
        assert!(
            !Filter::parse("flag gt false")
                .unwrap()
                .matches(&json!({"flag": true}))
        );
    }

    #[test]
    fn complex_values_compare_through_value() {
        let resource = json!({"emails": [{"value": "a@x.org"}, {"value": "b@y.org"}]});
        assert!(
            Filter::parse("emails co \"y.org\"")
                .unwrap()
                .matches(&resource)
        );
    }

    #[test]
    fn equality_template_collects_eq_terms() {
        let filter = Filter::parse("type eq \"work\" and primary eq true").unwrap();
        assert_eq!(
            filter.equality_template(),
            Some(
                json!({"type": "work", "primary": true})
                    .as_object()
                    .unwrap()
                    .clone()
            )
        );
        assert!(
            Filter::parse("type co \"w\"")
                .unwrap()
                .equality_template()
                .is_none()
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "userName eq \"a\\\"b\"",
            "a eq 1 or b eq 2 and c eq 3",
            "(a eq 1 or b eq 2) and not (c pr)",
            "a eq 1 and (b eq 2 and c eq 3)",
            "a eq 1 or (b eq 2 or c eq 3)",
            "emails[type eq \"work\" or primary eq true].value sw \"x\"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber ge -1.5",
            "meta.lastModified gt \"2026-01-01T00:00:00Z\" and x eq null and y ne false",
        ] {
            let filter = Filter::parse(text).unwrap();
            let shown = filter.to_string();
            assert_eq!(Filter::parse(&shown).unwrap(), filter, "{text} -> {shown}");
        }
        assert_eq!(
            Filter::parse("a EQ 1 OR b eq 2 AND c eq 3")
                .unwrap()
                .to_string(),
            "a eq 1 or b eq 2 and c eq 3"
        );
    }

    #[test]
    fn parses_patch_paths() {
        let parsed = Path::parse("emails[type eq \"work\"].value").unwrap();
        assert_eq!(parsed.attr.name, "emails");
        assert_eq!(parsed.sub_attribute.as_deref(), Some("value"));
        assert!(parsed.filter.is_some());
        let error = Path::parse("emails[type eq \"work\"").unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
        assert!(Path::parse("name.givenName[type eq 1]").is_err());
        assert!(Path::parse("emails[primary gt false].value").is_err());
        assert!(Path::parse("emails[type eq \"work\"] extra").is_err());
    }
}
