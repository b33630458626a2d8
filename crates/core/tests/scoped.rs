//! A view scoped to a run's people ([`view_keys`], `MemoryDirectory::scoped_view`) plans
//! and guards a delta or a single-user sync exactly as the whole directory does.

use jiff::SignedDuration;
use oneroster::Role;
use proptest::prelude::*;
use rostersync_core::directory::*;
use rostersync_core::guard::{Pulled, guard, guard_counting, losing_schools, updates};
use rostersync_core::memory::MemoryDirectory;
use rostersync_core::plan::*;
use rostersync_core::planner::{self, PeopleAhead, plan, view_keys};
use rostersync_core::settings::*;
use rostersync_core::sis::SisPerson;
use rostersync_core::view::{Decision, RETIRED};

use crate::planner::{full_pull, now, person};

const NAMES: [(&str, &str); 3] = [("Ana", "Li"), ("Bo", "Ek"), ("Ana", "Lee")];
const DOMAINS: [&str; 2] = ["students.district.k12.us", "district.k12.us"];
/// Identifiers as accounts and people carry them (the view trims them).
const IDS: [&str; 4] = ["ID-1", " ID-1", "ID-2", "ID-3 "];
const SCHOOLS: [&str; 2] = ["school-1", "school-2"];
/// sourcedIds come from a small pool, so people meet their links, refusals and decisions.
const PEOPLE: usize = 8;

/// An email of one of the names: `given.family@domain`, or the append-domain form
/// `givenfamily@district.k12.us`; upper-cased or not.
fn email(name: usize, domain: usize, append_form: bool, upper: bool) -> String {
    let (g, f) = NAMES[name];
    let e = if append_form {
        format!("{}{}@{}", g.to_lowercase(), f.to_lowercase(), DOMAINS[1])
    } else {
        format!(
            "{}.{}@{}",
            g.to_lowercase(),
            f.to_lowercase(),
            DOMAINS[domain]
        )
    };
    if upper { e.to_uppercase() } else { e }
}

fn arb_email() -> impl Strategy<Value = String> {
    (
        0..NAMES.len(),
        0..DOMAINS.len(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n, d, append, upper)| email(n, d, append, upper))
}

fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![
        4 => Just(Role::Student),
        2 => Just(Role::Teacher),
        1 => Just(Role::Parent),
        1 => Just(Role::Other("ext:coach".into())),
    ]
}

fn arb_person() -> impl Strategy<Value = SisPerson> {
    (
        0..PEOPLE,
        0..NAMES.len(),
        0..DOMAINS.len(),
        any::<bool>(),
        proptest::option::weighted(0.7, any::<bool>()),
        arb_role(),
        proptest::bool::weighted(0.8),
        proptest::option::weighted(0.6, 0..IDS.len()),
        0..SCHOOLS.len(),
    )
        .prop_map(
            |(k, name, domain, upper, email_upper, role, active, id, school)| {
                let (g, f) = NAMES[name];
                let e = email_upper.map(|u| email(name, domain, false, u || upper));
                let mut p = person(&format!("p{k}"), role, g, f, e.as_deref());
                p.edit(|f| {
                    f.enabled = active;
                    f.identifier = id.map(|i| IDS[i].to_owned());
                    f.primary_org = Some(SCHOOLS[school].to_owned());
                    f.orgs = vec![SCHOOLS[school].to_owned()];
                });
                p
            },
        )
}

fn arb_account() -> impl Strategy<Value = Account> {
    (
        proptest::option::weighted(0.85, arb_email()),
        proptest::option::weighted(0.5, 0..NAMES.len()),
        proptest::option::weighted(0.5, 0..IDS.len()),
        any::<bool>(),
        0..3u8,
    )
        .prop_map(|(email, username, id, admin_wrote, access)| {
            let mut u = Account::blank(AccountId(0));
            u.email = email;
            u.username = username.map(|n| {
                let (g, f) = NAMES[n];
                format!("{}{}", g.to_lowercase(), f.to_lowercase())
            });
            u.identifier = id.map(|i| IDS[i].to_owned());
            u.first_name = Some("Someone".into());
            u.provider = Some("google".into());
            u.access = [Access::Requestor, Access::Agent, Access::NoAccess][usize::from(access)];
            let w = if admin_wrote {
                Writer::Admin("alice".into())
            } else {
                Writer::SignOn("google".into())
            };
            u.provenance = vec![(Field::Email, w.clone()), (Field::FirstName, w)].into();
            u
        })
}

/// What happens to the directory between the first full sync and the run under test.
#[derive(Debug, Clone)]
enum Tweak {
    /// This source deactivated the account this many days ago.
    Deactivate(usize, i64),
    /// An admin deactivated it.
    AdminDeactivate(usize),
    /// Merged into another account (only accounts without a link, as merges refuse two
    /// links of one source).
    Merge(usize, usize),
    Alias(usize, AliasKind, String),
    /// An admin unlinked (or the sync retired) the account from a person.
    Refuse(Option<usize>, usize),
    Decide(usize, Decision),
    Access(usize, Access),
    /// An admin changed the account's email.
    Email(usize, String),
    Identifier(usize, usize),
}

fn arb_tweak() -> impl Strategy<Value = Tweak> {
    let user = 0..32usize;
    prop_oneof![
        (user.clone(), 0..800i64).prop_map(|(u, d)| Tweak::Deactivate(u, d)),
        user.clone().prop_map(Tweak::AdminDeactivate),
        (user.clone(), user.clone()).prop_map(|(a, b)| Tweak::Merge(a, b)),
        (
            user.clone(),
            prop_oneof![Just(AliasKind::Email), Just(AliasKind::Username)],
            prop_oneof![
                arb_email(),
                (0..NAMES.len()).prop_map(|n| {
                    let (g, f) = NAMES[n];
                    format!("{}{}", g, f)
                })
            ]
        )
            .prop_map(|(u, k, v)| Tweak::Alias(u, k, v)),
        (proptest::option::of(0..PEOPLE), user.clone()).prop_map(|(p, u)| Tweak::Refuse(p, u)),
        (
            0..PEOPLE,
            prop_oneof![Just(Decision::Create), Just(Decision::Ignore)]
        )
            .prop_map(|(p, d)| Tweak::Decide(p, d)),
        (
            user.clone(),
            prop_oneof![Just(Access::Agent), Just(Access::Admin)]
        )
            .prop_map(|(u, a)| Tweak::Access(u, a)),
        (user.clone(), arb_email()).prop_map(|(u, e)| Tweak::Email(u, e)),
        (user, 0..IDS.len()).prop_map(|(u, i)| Tweak::Identifier(u, i)),
    ]
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (0..3u64, 0.0..60.0f64, 0.0..60.0f64, 0..4u64, 1..4u64),
    )
        .prop_map(
            |((translate, append, by_id, by_email), (max, pct, loss, min_pop, min_school))| {
                let mut toml = String::from(
                    "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"x\"\n[source.user_mapping]\n",
                );
                if translate {
                    toml.push_str("translate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\n");
                }
                if append {
                    toml.push_str("append_domain = \"district.k12.us\"\n");
                }
                toml.push_str(&format!(
                    "match_by_identifier = {by_id}\nmatch_by_email = {by_email}\n[source.import]\nother_users = true\n"
                ));
                let mut c = Config::from_toml(&toml).unwrap();
                let g = &mut c.sources[0].safeguards;
                g.max_deactivations = max;
                g.max_deactivations_percent = pct;
                g.max_school_loss_percent = loss;
                g.max_creations_percent = pct;
                g.max_updates_percent = pct;
                g.min_population = min_pop;
                g.min_school_size = min_school;
                c
            },
        )
}

type Case = (
    Config,
    Vec<Account>,
    Vec<SisPerson>,
    Vec<Tweak>,
    Vec<SisPerson>,
    bool,
);

fn arb_case() -> impl Strategy<Value = Case> {
    (
        arb_config(),
        proptest::collection::vec(arb_account(), 0..10),
        proptest::collection::vec(arb_person(), 0..PEOPLE),
        proptest::collection::vec(arb_tweak(), 0..16),
        proptest::collection::vec(arb_person(), 0..6),
        any::<bool>(),
    )
}

/// The directory after a first full sync of `first` over `accounts`, then `tweaks`.
fn directory(
    cfg: &Config,
    accounts: Vec<Account>,
    first: &[SisPerson],
    tweaks: &[Tweak],
) -> MemoryDirectory {
    let mut dir = MemoryDirectory::default();
    for a in accounts {
        dir.add_user(a);
    }
    let p = plan(
        &PlanInput {
            config: cfg,
            source: &cfg.sources[0],
            kind: SyncKind::Full,
            complete: true,
            people: first,
            roster: None,
            now: now(),
        },
        &dir.view("sis"),
    );
    dir.apply(&p, now());
    let ids: Vec<AccountId> = dir.users.keys().copied().collect();
    if ids.is_empty() {
        return dir;
    }
    let id = |i: usize| ids[i % ids.len()];
    let linked = |dir: &MemoryDirectory, u: AccountId| dir.links.values().any(|l| l.user_id == u);
    for t in tweaks {
        match t {
            Tweak::Deactivate(u, days) => {
                let u = id(*u);
                let at = now() - SignedDuration::from_hours(24 * days);
                if let Some(link) = dir.links.values_mut().find(|l| l.user_id == u) {
                    link.deactivated_at = Some(at);
                    link.previous_access = Some(Access::Requestor);
                }
                let user = dir.users.get_mut(&u).unwrap();
                user.active = false;
                user.access = Access::NoAccess;
                user.revision += 1;
            }
            Tweak::AdminDeactivate(u) => {
                let user = dir.users.get_mut(&id(*u)).unwrap();
                user.active = false;
                user.revision += 1;
            }
            Tweak::Merge(loser, survivor) => {
                let (loser, survivor) = (id(*loser), id(*survivor));
                if loser != survivor && !linked(&dir, loser) {
                    let user = dir.users.get_mut(&loser).unwrap();
                    user.merged_into = Some(survivor);
                    user.active = false;
                }
            }
            Tweak::Alias(u, kind, value) => dir.aliases.push((id(*u), *kind, MatchKey::new(value))),
            Tweak::Refuse(p, u) => {
                let sourced_id = p.map_or_else(|| RETIRED.to_owned(), |p| format!("p{p}"));
                dir.refused.push(("sis".into(), sourced_id, id(*u)));
            }
            Tweak::Decide(p, d) => {
                dir.decisions.insert(("sis".into(), format!("p{p}")), *d);
            }
            Tweak::Access(u, a) => dir.users.get_mut(&id(*u)).unwrap().access = *a,
            Tweak::Email(u, e) => {
                let user = dir.users.get_mut(&id(*u)).unwrap();
                user.email = Some(e.clone());
                user.provenance
                    .set(Field::Email, Writer::Admin("alice".into()));
                user.revision += 1;
            }
            Tweak::Identifier(u, i) => {
                dir.users.get_mut(&id(*u)).unwrap().identifier = Some(IDS[*i].to_owned());
            }
        }
    }
    dir
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn a_scoped_view_plans_and_guards_like_the_whole_directory(
        (cfg, accounts, first, tweaks, delta, single) in arb_case()
    ) {
        let dir = directory(&cfg, accounts, &first, &tweaks);
        let source = &cfg.sources[0];
        // A single-user sync plans one person; a delta any number.
        let people: Vec<SisPerson> = if single { delta.into_iter().take(1).collect() } else { delta };
        let kind = if single { SyncKind::User } else { SyncKind::Delta };
        let full = dir.view("sis");
        let keys = view_keys(source, &people);
        for complete in [false, true] {
            let mut scoped = dir.scoped_view("sis", &keys);
            prop_assert_eq!(scoped.population().active, full.population().active);
            prop_assert!(scoped.population().by_school.is_empty() && scoped.population().by_role.is_empty());
            let input = PlanInput {
                config: &cfg,
                source,
                kind,
                complete,
                people: &people,
                roster: None,
                now: now() + SignedDuration::from_hours(1),
            };
            let want = plan(&input, &full);
            let got = plan(&input, &scoped);
            prop_assert_eq!(&got, &want);
            let counts = |schools: &[&str]| Ok::<_, ()>(dir.school_counts("sis", schools));
            prop_assert_eq!(
                guard_counting(&got, updates(&got), &mut scoped, source, &Pulled::of(&people), counts).unwrap(),
                guard(&want, &full, source, &Pulled::of(&people))
            );
            // Only the schools the plan takes people from were counted, as the whole
            // directory counts them.
            let losing = losing_schools(&got, &scoped);
            for (school, n) in &scoped.population().by_school {
                prop_assert!(losing.contains_key(school.as_str()));
                prop_assert_eq!(Some(n), full.population().by_school.get(school));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A full pull (complete or not) or a wide delta reads every link but only the
    /// accounts its changed people reach, and plans and guards like the whole directory.
    #[test]
    fn a_full_pull_on_links_and_the_accounts_it_needs_plans_like_the_whole_directory(
        (cfg, accounts, first, tweaks, again, keep_first) in arb_case()
    ) {
        let dir = directory(&cfg, accounts, &first, &tweaks);
        let source = &cfg.sources[0];
        // The second pull: the first people again (most unchanged), some new ones.
        let mut people: Vec<SisPerson> = if keep_first { first.clone() } else { Vec::new() };
        people.extend(again);
        let full = dir.view("sis");
        // A delta that holds much of the source is planned on every link too.
        for (kind, complete) in [
            (SyncKind::Full, false),
            (SyncKind::Full, true),
            (SyncKind::Delta, false),
        ] {
            let input = PlanInput {
                config: &cfg,
                source,
                kind,
                complete,
                people: &people,
                roster: None,
                now: now() + SignedDuration::from_hours(1),
            };
            let want = plan(&input, &full);
            // By key (however many changed), by a scan of every account (however few
            // changed), and as the engine asks.
            let ids = |accounts: &(Vec<Account>, Vec<(AccountId, AliasKind, MatchKey)>)| {
                let mut ids: Vec<AccountId> = accounts.0.iter().map(|u| u.id).collect();
                ids.sort();
                (ids, accounts.1.clone())
            };
            let mut by_key = None;
            for most in [Some(u64::MAX), Some(0), None] {
                // As the engine takes them in, the people ordered and hashed ahead, under
                // these settings or (made again) under others.
                let intake = match most {
                    Some(u64::MAX) => planner::intake(&input),
                    Some(_) => planner::intake_ahead(&input, PeopleAhead::new(&people, 0)),
                    None => planner::intake_ahead(
                        &input,
                        PeopleAhead::on_one_thread(
                            &people,
                            planner::settings_fingerprint(&cfg, source),
                        ),
                    ),
                };
                let mut lean = dir.links_view("sis");
                let keys = match most {
                    Some(most) => intake.accounts_needed_up_to(&lean, most),
                    None => intake.accounts_needed(&lean),
                };
                prop_assert!(most.is_none() || keys.everyone == keys.scan.is_some());
                let read = dir.accounts("sis", &keys);
                match most {
                    Some(u64::MAX) => {
                        prop_assert!(!keys.everyone);
                        by_key = Some(ids(&read));
                    }
                    // The scan keeps what the keys reach, no more (no two keys of a case
                    // this small share a hash).
                    Some(_) if keys.everyone => prop_assert_eq!(Some(ids(&read)), by_key.clone()),
                    _ => {}
                }
                let (users, aliases) = read;
                lean.add_accounts(users, aliases);
                let got = intake.plan(&lean);
                prop_assert_eq!(&got, &want);
                let counts = |schools: &[&str]| Ok::<_, ()>(dir.school_counts("sis", schools));
                prop_assert_eq!(
                    guard_counting(&got, updates(&got), &mut lean, source, &Pulled::of(&people), counts).unwrap(),
                    guard(&want, &full, source, &Pulled::of(&people))
                );
                prop_assert_eq!(lean.population(), full.population());
            }
            // Planned a chunk of people at a time, each chunk reading the accounts it
            // needs: the same plan, item for item, and no account held after.
            for chunk in [1, 3, people.len().max(1)] {
                let mut lean = dir.links_view("sis");
                let mut items = Vec::new();
                let mut records = Vec::new();
                let mut reads = 0;
                let mut load = |keys: &rostersync_core::view::ViewKeys| {
                    prop_assert!(!keys.everyone);
                    reads += 1;
                    Ok(dir.accounts("sis", keys))
                };
                let mut got = planner::intake(&input)
                    .plan_by_chunks(&mut lean, chunk, &mut load, |item, record| {
                        items.push(item);
                        records.extend(record);
                    })?;
                // At least one read a chunk.
                let ids: std::collections::BTreeSet<&str> =
                    people.iter().map(|p| p.sourced_id()).collect();
                prop_assert!(reads >= ids.len().div_ceil(chunk));
                prop_assert_eq!(lean.users().count(), 0);
                (got.items, got.sis_records) = (items, records);
                prop_assert_eq!(&got, &want);
            }
        }
    }
}

/// An unchanged district reads no account at all on a full pull.
#[test]
fn an_unchanged_full_pull_needs_no_account() {
    let cfg = crate::planner::config("");
    let people = vec![
        person(
            "s1",
            Role::Student,
            "Ana",
            "Li",
            Some("ana.li@district.k12.us"),
        ),
        person(
            "t1",
            Role::Teacher,
            "Bo",
            "Ek",
            Some("bo.ek@district.k12.us"),
        ),
    ];
    let mut dir = MemoryDirectory::default();
    let input = full_pull(&cfg, &people);
    let first = plan(&input, &dir.view("sis"));
    assert_eq!(first.counts.created, 2);
    dir.apply(&first, now());

    let lean = dir.links_view("sis");
    let intake = planner::intake(&input);
    assert_eq!(intake.accounts_needed(&lean), Default::default());
    assert_eq!(lean.account_count(), 2);
    let again = intake.plan(&lean);
    assert_eq!(again.counts.unchanged, 2);
    assert!(again.items.iter().all(|i| i.outcome == Outcome::Unchanged));

    // One person gone: only their account is read (to deactivate it).
    let input = PlanInput {
        people: &people[..1],
        ..input
    };
    let keys = planner::intake(&input).accounts_needed_up_to(&lean, u64::MAX);
    assert_eq!(keys.sourced_ids, ["t1".to_owned()].into_iter().collect());
    assert!(keys.emails.is_empty() && keys.aliases.is_empty());
}

/// The keys follow the settings: the translated email and the append-domain address,
/// the SIS email and username as aliases, identifiers only when they match.
#[test]
fn keys_follow_the_user_mapping() {
    let cfg = crate::planner::config(
        "[source.user_mapping]\ntranslate_email = [{ from = \"students.district.k12.us\", to = \"district.k12.us\" }]\n\
         append_domain = \"District.K12.us\"\nmatch_by_identifier = true\n",
    );
    let source = &cfg.sources[0];
    let mut a = person(
        "s1",
        Role::Student,
        "Ana",
        "Li",
        Some(" Ana.Li@Students.District.K12.us"),
    );
    a.edit(|f| f.identifier = Some(" 1234 ".into()));
    let mut b = person("s2", Role::Teacher, "Bo", "Ek", None);
    b.edit(|f| f.identifier = None);
    let keys = view_keys(source, &[a, b]);
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    let key_set = |v: &[&str]| v.iter().map(|s| MatchKey::new(s)).collect();
    assert_eq!(keys.sourced_ids, set(&["s1", "s2"]));
    assert_eq!(
        keys.emails,
        key_set(&["ana.li@district.k12.us", "boek@district.k12.us"])
    );
    assert_eq!(keys.identifiers, set(&["1234"]));
    assert_eq!(
        keys.aliases,
        [
            (AliasKind::Email, "ana.li@district.k12.us"),
            (AliasKind::Email, "ana.li@students.district.k12.us"),
            (AliasKind::Email, "boek@district.k12.us"),
            (AliasKind::Username, "anali"),
            (AliasKind::Username, "boek"),
        ]
        .into_iter()
        .map(|(k, v)| (k, MatchKey::new(v)))
        .collect()
    );

    let off = crate::planner::config("");
    let mut c = person("s3", Role::Student, "Cy", "Do", None);
    c.edit(|f| f.identifier = Some("9".into()));
    let keys = view_keys(&off.sources[0], &[c]);
    assert!(keys.emails.is_empty() && keys.identifiers.is_empty());
}
