//! A push to a SCIM target, planned: what the target should hold for each account (its
//! attributes, [`desired`]), how that differs from what it was last sent ([`classify`],
//! by hash, so a push with nothing changed reads nothing more), and the SCIM resource and
//! PATCH operations between the two ([`resource`], [`operations`]). Pure: the engine
//! reads the directory and the push state, sends what this module says, and records what
//! the target answered.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::directory::{Account, AccountId, Field};
use crate::plan::FieldChange;
use crate::sis::Fnv;
use crate::target::{TargetConfig, UserNameFrom};

/// The core User schema.
pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The attributes every pushed user has besides its fields.
pub const USER_NAME: &str = "userName";
pub const EXTERNAL_ID: &str = "externalId";
pub const DISPLAY_NAME: &str = "displayName";

/// What a target is sent for one account: its attributes by key (a field's name, or
/// [`USER_NAME`], [`EXTERNAL_ID`], [`DISPLAY_NAME`]) and whether it is active.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pushed {
    pub attrs: BTreeMap<String, String>,
    pub active: bool,
}

impl Pushed {
    /// A stable 64-bit hash (FNV-1a) of the attributes and the state: equal hashes mean
    /// nothing to send.
    pub fn hash(&self) -> i64 {
        let mut h = Fnv::new();
        for (k, v) in &self.attrs {
            h.str(k);
            h.str(v);
        }
        h.bool(self.active);
        h.finish() as i64
    }

    /// This state, inactive (what an account that left the target's selection is sent).
    pub fn deactivated(mut self) -> Pushed {
        self.active = false;
        self
    }
}

/// Why an account the target's selection names cannot be pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpushable {
    /// Neither an email nor a username to make the `userName` from.
    NoUserName,
}

/// What the target should hold for `account` (`linked`: a SIS source links it): `None`
/// when the target's selection leaves it out (a merged account, another type or
/// location, not linked under `linked_only`).
pub fn desired(
    account: &Account,
    linked: bool,
    target: &TargetConfig,
) -> Option<Result<Pushed, Unpushable>> {
    if account.merged_into.is_some()
        || !target.types.contains(&account.user_type)
        || (target.linked_only && !linked)
    {
        return None;
    }
    if !target.locations.is_empty()
        && !account
            .location
            .as_ref()
            .is_some_and(|l| target.locations.contains(l))
    {
        return None;
    }
    fn present(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let (first, second) = match target.user_name {
        UserNameFrom::Email => (present(&account.email), present(&account.username)),
        UserNameFrom::Username => (present(&account.username), present(&account.email)),
    };
    let Some(user_name) = first.or(second) else {
        return Some(Err(Unpushable::NoUserName));
    };
    let mut attrs = BTreeMap::new();
    attrs.insert(USER_NAME.to_owned(), user_name.to_owned());
    attrs.insert(EXTERNAL_ID.to_owned(), account.id.to_string());
    attrs.insert(DISPLAY_NAME.to_owned(), account.display_name());
    for &f in Field::ALL {
        // The username travels only as the userName (when it is the one that does).
        if f == Field::Username && target.user_name != UserNameFrom::Username {
            continue;
        }
        if target.sends(f)
            && let Some(v) = account.get(f).map(str::trim).filter(|v| !v.is_empty())
        {
            attrs.insert(f.as_str().to_owned(), v.to_owned());
        }
    }
    Some(Ok(Pushed {
        attrs,
        active: account.active,
    }))
}

/// What the push state says the target holds for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// [`Pushed::hash`] of what it was last sent.
    pub hash: i64,
    pub active: bool,
    /// Whether the target has the user (a create or an adoption succeeded once).
    pub remote: bool,
}

/// What a push does for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The target has no such user yet: found by `externalId`, `userName` or email and
    /// adopted, else created.
    Create,
    /// Attributes changed.
    Update,
    /// Active on the target, not any more (inactive here, or out of the selection).
    Deactivate,
    /// Inactive on the target, active again.
    Reactivate,
    /// Nothing to send.
    Unchanged,
}

/// What to do for an account the target should hold as `want` (`None`: out of the
/// selection) and holds as `held` (`None`: never pushed). `None`: nothing at all (an
/// inactive account never pushed is not created).
pub fn classify(want: Option<&Pushed>, held: Option<&Held>) -> Option<Action> {
    match (want, held) {
        (None, None) => None,
        (Some(w), None) => w.active.then_some(Action::Create),
        (Some(w), Some(h)) if !h.remote => w.active.then_some(Action::Create),
        (None, Some(h)) => Some(if h.remote && h.active {
            Action::Deactivate
        } else {
            Action::Unchanged
        }),
        (Some(w), Some(h)) => Some(match (h.active, w.active) {
            (false, true) => Action::Reactivate,
            (true, false) => Action::Deactivate,
            (false, false) => Action::Unchanged,
            (true, true) if w.hash() == h.hash => Action::Unchanged,
            (true, true) => Action::Update,
        }),
    }
}

/// The field changes between what a target was sent and what it is sent now (for a run's
/// item and the account's history).
pub fn changes(old: Option<&Pushed>, new: &Pushed) -> Vec<FieldChange> {
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |o| &o.attrs);
    Field::ALL
        .iter()
        .filter_map(|&f| {
            let (o, n) = (before.get(f.as_str()), new.attrs.get(f.as_str()));
            (o != n).then(|| FieldChange {
                field: f,
                old: o.cloned(),
                new: n.cloned(),
            })
        })
        .collect()
}

/// Where an attribute key goes in a SCIM User: its PATCH path, and how its value is
/// written there.
enum Slot<'a> {
    /// A string at a top-level attribute (`userName`, `title`).
    Top(&'a str),
    /// A sub-attribute of `name`.
    Name(&'a str),
    /// An attribute of the enterprise extension.
    Enterprise(&'a str),
    /// The one `work` value of a multi-valued attribute (`emails`, `phoneNumbers`).
    Work(&'a str),
}

impl Slot<'_> {
    fn path(&self) -> String {
        match self {
            Slot::Top(a) | Slot::Work(a) => (*a).to_owned(),
            Slot::Name(a) => format!("name.{a}"),
            Slot::Enterprise(a) => format!("{ENTERPRISE_USER}:{a}"),
        }
    }

    /// The value of the PATCH operation or resource member for `v`.
    fn value(&self, v: &str) -> Value {
        match self {
            Slot::Work("emails") => json!([{"value": v, "type": "work", "primary": true}]),
            Slot::Work(_) => json!([{"value": v, "type": "work"}]),
            _ => Value::String(v.to_owned()),
        }
    }
}

fn slot<'a>(key: &str, target: &'a TargetConfig) -> Option<Slot<'a>> {
    const ENTERPRISE_PREFIX: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:";
    let configured = |a: &'a str| match a.strip_prefix(ENTERPRISE_PREFIX) {
        Some(e) => Slot::Enterprise(e),
        None => Slot::Top(a),
    };
    Some(match key {
        USER_NAME => Slot::Top(USER_NAME),
        EXTERNAL_ID => Slot::Top(EXTERNAL_ID),
        DISPLAY_NAME => Slot::Top(DISPLAY_NAME),
        _ => match key.parse::<Field>().ok()? {
            Field::Username => return None,
            Field::Email => Slot::Work("emails"),
            Field::FirstName => Slot::Name("givenName"),
            Field::MiddleName => Slot::Name("middleName"),
            Field::LastName => Slot::Name("familyName"),
            Field::PreferredName => Slot::Top("nickName"),
            Field::Type => Slot::Top("userType"),
            Field::Phone => Slot::Work("phoneNumbers"),
            Field::Identifier => Slot::Enterprise("employeeNumber"),
            Field::Location => Slot::Enterprise("department"),
            Field::Grade => configured(target.grade_attribute.as_deref()?),
            Field::Homeroom => configured(target.homeroom_attribute.as_deref()?),
        },
    })
}

/// The SCIM User resource for `p` (a `POST`'s body).
pub fn resource(p: &Pushed, target: &TargetConfig) -> Value {
    let mut top = Map::new();
    let mut name = Map::new();
    let mut enterprise = Map::new();
    for (k, v) in &p.attrs {
        match slot(k, target) {
            Some(s @ (Slot::Top(_) | Slot::Work(_))) => {
                top.insert(s.path(), s.value(v));
            }
            Some(Slot::Name(a)) => {
                name.insert(a.to_owned(), Value::String(v.clone()));
            }
            Some(Slot::Enterprise(a)) => {
                enterprise.insert(a.to_owned(), Value::String(v.clone()));
            }
            None => {}
        }
    }
    let mut schemas = vec![Value::String(CORE_USER.to_owned())];
    if !name.is_empty() {
        top.insert("name".to_owned(), Value::Object(name));
    }
    if !enterprise.is_empty() {
        schemas.push(Value::String(ENTERPRISE_USER.to_owned()));
        top.insert(ENTERPRISE_USER.to_owned(), Value::Object(enterprise));
    }
    top.insert("active".to_owned(), Value::Bool(p.active));
    top.insert("schemas".to_owned(), Value::Array(schemas));
    Value::Object(top)
}

/// The PATCH operations that turn what a target holds (`old`; `None`: a user it had
/// before rostersync, adopted, so every attribute is replaced) into `new`: changed
/// attributes replaced, dropped ones removed, `active` replaced when it changes.
pub fn operations(old: Option<&Pushed>, new: &Pushed, target: &TargetConfig) -> Vec<Value> {
    let mut ops = Vec::new();
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |o| &o.attrs);
    for (k, v) in &new.attrs {
        if before.get(k) != Some(v)
            && let Some(s) = slot(k, target)
        {
            ops.push(json!({"op": "replace", "path": s.path(), "value": s.value(v)}));
        }
    }
    for k in before.keys().filter(|k| !new.attrs.contains_key(*k)) {
        if let Some(s) = slot(k, target) {
            ops.push(json!({"op": "remove", "path": s.path()}));
        }
    }
    if old.is_none_or(|o| o.active != new.active) {
        ops.push(json!({"op": "replace", "path": "active", "value": new.active}));
    }
    ops
}

/// The filters that find a user the target may already have for `p`, in the order they
/// are tried: by `externalId` (pushed before, the state lost), `userName`, then email.
pub fn correlation_keys(p: &Pushed) -> Vec<(&'static str, &str)> {
    let mut keys = Vec::new();
    if let Some(v) = p.attrs.get(EXTERNAL_ID) {
        keys.push((EXTERNAL_ID, v.as_str()));
    }
    if let Some(v) = p.attrs.get(USER_NAME) {
        keys.push((USER_NAME, v.as_str()));
    }
    // Even when the email is the userName: the target's user may have another userName.
    if let Some(v) = p.attrs.get(Field::Email.as_str()) {
        keys.push(("emails.value", v.as_str()));
    }
    keys
}

/// The account a pushed user stands for, from its `externalId`.
pub fn account_of(p: &Pushed) -> Option<AccountId> {
    p.attrs.get(EXTERNAL_ID)?.parse().ok()
}

/// The core Group schema.
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// What a target is sent for one group: its name and its members (the target's ids of
/// the users it holds active).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PushedGroup {
    pub name: String,
    pub members: BTreeSet<String>,
}

impl PushedGroup {
    /// A stable hash of the name and members: equal hashes mean nothing to send.
    pub fn hash(&self) -> i64 {
        let mut h = Fnv::new();
        h.str(&self.name);
        for m in &self.members {
            h.str(m);
        }
        h.finish() as i64
    }
}

/// The `externalId` of a group on a target: `group:` and the group's id in rostersync.
pub fn group_external_id(group: i64) -> String {
    format!("group:{group}")
}

/// The SCIM Group resource for `g` (a `POST`'s body).
pub fn group_resource(g: &PushedGroup, external_id: &str) -> Value {
    json!({
        "schemas": [CORE_GROUP],
        "externalId": external_id,
        "displayName": g.name,
        "members": g.members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
    })
}

/// The PATCH operations that turn group `old` into `new` (`old` `None`: a group the
/// target had, adopted: its name, `externalId` and members replaced): the name replaced
/// when it changed, members added and removed one by one.
pub fn group_operations(
    old: Option<&PushedGroup>,
    new: &PushedGroup,
    external_id: &str,
) -> Vec<Value> {
    let Some(old) = old else {
        return vec![
            json!({"op": "replace", "path": "displayName", "value": new.name}),
            json!({"op": "replace", "path": EXTERNAL_ID, "value": external_id}),
            json!({"op": "replace", "path": "members",
                   "value": new.members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()}),
        ];
    };
    let mut ops = Vec::new();
    if old.name != new.name {
        ops.push(json!({"op": "replace", "path": "displayName", "value": new.name}));
    }
    let added: Vec<Value> = new
        .members
        .difference(&old.members)
        .map(|m| json!({"value": m}))
        .collect();
    if !added.is_empty() {
        ops.push(json!({"op": "add", "path": "members", "value": added}));
    }
    for m in old.members.difference(&new.members) {
        ops.push(json!({"op": "remove", "path": format!("members[value eq {}]", Value::String(m.clone()))}));
    }
    ops
}
