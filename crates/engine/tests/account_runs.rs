//! Runs of account sources through the engine's API, against the local stand-ins of
//! Google's Directory API and Microsoft Graph (`sim::idp`), after a SIS sync of the
//! sample district: the district's story — students' Google accounts appear, are linked
//! to the accounts the SIS made (never duplicated), a staff member only Google knows gets
//! an account, one is renamed, one suspended — and Entra's delta with a removal.

use std::collections::HashSet;

use engine::SyncOutcome;
use rostersync_core::directory::Account;
use rostersync_core::plan::SyncKind;
use rostersync_core::settings::Config;
use sim::idp::entra::{self, EntraStandIn, EntraUser};
use sim::idp::google::{self, GoogleAccount, GoogleStandIn, RunningGoogle};
use store::{RunStatus, UserQuery};

use crate::harness::{Env, sample_district};

crate::on_both!(
    google_accounts_link_to_the_sis_accounts_and_never_duplicate,
    an_entra_delta_applies_changes_and_removals,
    a_provider_that_refuses_records_a_failed_run,
    a_read_larger_than_a_run_holds_is_applied_as_it_is_made,
);

fn accounts(env: &Env) -> Vec<Account> {
    env.store()
        .list_users(&UserQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.user)
        .collect()
}

fn user(env: &Env, key: &str) -> Account {
    env.store()
        .find_user(key)
        .unwrap()
        .unwrap_or_else(|| panic!("no account {key}"))
        .user
}

/// The SIS source `sis` (the sample district) and `extra` sources, loopback allowed (the
/// stand-ins listen there); `secrets` sealed with the test key.
fn configure(env: &Env, extra: &str, secrets: &[(&str, &str)]) {
    let toml = format!(
        "[network]\nallow_loopback = true\n\n[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n{extra}",
        sample_district().display()
    );
    let config = Config::from_toml(&toml).unwrap();
    let sealed: Vec<(String, Option<Vec<u8>>)> = secrets
        .iter()
        .map(|(name, secret)| {
            (
                (*name).to_owned(),
                Some(env.keyring.encrypt(secret.as_bytes())),
            )
        })
        .collect();
    env.store()
        .save_config(&config, &sealed, "test", env.now())
        .unwrap();
}

fn google_source(running: &RunningGoogle) -> String {
    format!(
        "[[source]]\nname = \"google\"\nkind = \"google-workspace\"\nsubject = \"{}\"\napi_url = \"{}\"\n\n[source.user_mapping]\nappend_domain = \"district.k12.us\"\n",
        google::STANDIN_ADMIN,
        running.base_url()
    )
}

fn student(id: &str, email: &str, given: &str, family: &str) -> GoogleAccount {
    let mut a = GoogleAccount::new(id, email, given, family);
    a.org_unit_path = "/Students".into();
    a
}

/// Two students of the sample district in Google: Ava by her SIS username, Mia by email.
fn ava() -> GoogleAccount {
    student("g-ava", "s100001@district.k12.us", "Ava", "Johnson")
}

fn mia() -> GoogleAccount {
    student(
        "g-mia",
        "mia.johnson@students.district.k12.us",
        "Mia",
        "Johnson",
    )
}

/// The Google domain the sample district's stories read: Ava, Mia, `third`, a coach only
/// Google knows, and a suspended old account nobody needs.
fn the_domain(third: GoogleAccount) -> Vec<GoogleAccount> {
    let mut old = GoogleAccount::new("g-old", "old.account@district.k12.us", "Old", "Account");
    old.suspended = true;
    vec![
        ava(),
        mia(),
        third,
        GoogleAccount::new("g-coach", "coach.reyes@district.k12.us", "Ana", "Reyes"),
        old,
    ]
}

fn counts(out: &SyncOutcome) -> (u64, u64, u64, u64, u64, u64) {
    let c = out.counts;
    (
        c.seen,
        c.created,
        c.linked,
        c.updated,
        c.deactivated,
        c.skipped,
    )
}

fn items(env: &Env, out: &SyncOutcome) -> Vec<store::RunItemRecord> {
    env.store()
        .run_items(out.run_id.expect("recorded"), None, 0, 0)
        .unwrap()
}

fn google_accounts_link_to_the_sis_accounts_and_never_duplicate(env: Env) {
    let running = env
        .runtime
        .block_on(GoogleStandIn::start(the_domain({
            // Sofía signs in with her SIS email as an alias of a shorter address.
            let mut a = student(
                "g-sofia",
                "sgarcia@students.district.k12.us",
                "Sofia",
                "Garcia",
            );
            a.aliases = vec!["sofia.garcia@students.district.k12.us".into()];
            a
        })))
        .unwrap();
    configure(
        &env,
        &google_source(&running),
        &[("google", &running.key_file())],
    );
    // Validate reads every account and writes nothing.
    let seen = env.with_ctx(|ctx| engine::inspect(ctx, "google")).unwrap();
    assert_eq!(seen.collections["accounts"].records, 5);
    assert!(seen.complete());
    assert_eq!((seen.roles["active"], seen.roles["suspended"]), (4, 1));
    assert!(accounts(&env).is_empty());
    let sis = env.sync(SyncKind::Full, false);
    assert_eq!(sis.status, RunStatus::Succeeded, "{sis:?}");
    let before = accounts(&env).len();
    assert_eq!(before, 10);

    // First read: three students linked to their SIS accounts (by username, by email, by
    // an alias of Google's), the coach gets an account, the suspended stranger none.
    let first = env.sync_source("google", SyncKind::Full, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_eq!(counts(&first), (5, 1, 3, 0, 0, 1), "{first:?}");
    assert_eq!(
        accounts(&env).len(),
        before + 1,
        "one new account: the coach"
    );
    let ava = user(&env, "s100001@district.k12.us");
    assert_eq!(
        ava.username.as_deref(),
        Some("s100001"),
        "the SIS's username stays"
    );
    assert_eq!(ava.provider.as_deref(), Some("google"));
    let sofia = user(&env, "sofia.garcia@students.district.k12.us");
    assert_eq!(sofia.provider.as_deref(), Some("google"));
    assert_eq!(
        user(&env, "sgarcia@students.district.k12.us").id,
        sofia.id,
        "Google's sign-in name is now one of Sofía's match keys"
    );
    let coach = user(&env, "coach.reyes@district.k12.us");
    assert_eq!(coach.provider.as_deref(), Some("google"));
    assert_eq!(coach.first_name.as_deref(), Some("Ana"));
    let reasons: HashSet<String> = items(&env, &first)
        .into_iter()
        .map(|i| i.reason_code)
        .collect();
    for code in ["matched", "new_identity", "suspended_not_imported"] {
        assert!(reasons.contains(code), "{code} in {reasons:?}");
    }
    // The coach is signed in by Google but no SIS person's: the unlinked report lists her
    // with Google's side, and suggests no Google identity as her SIS person.
    let unlinked = env.store().report_unlinked(None, 0).unwrap();
    let row = unlinked
        .iter()
        .find(|u| u.id == coach.id)
        .unwrap_or_else(|| panic!("the coach is not in {unlinked:?}"));
    assert_eq!(row.identities.len(), 1, "{row:?}");
    assert_eq!(
        (
            row.identities[0].source.as_str(),
            row.identities[0].login.as_str()
        ),
        ("google", "coach.reyes@district.k12.us")
    );
    assert!(
        row.suggestions.iter().all(|s| s.source != "google"),
        "{row:?}"
    );
    assert!(
        !unlinked.iter().any(|u| u.id == sofia.id),
        "Sofía is the SIS's"
    );
    // The SIS still owns its people's names: Google's "Sofia" did not replace "Sofía".
    assert_eq!(sofia.first_name.as_deref(), Some("Sofía"));

    // Nothing changed: nothing written.
    let again = env.sync_source("google", SyncKind::Full, false);
    assert_eq!(counts(&again), (5, 0, 0, 0, 0, 1), "{again:?}");
    assert_eq!(again.counts.unchanged, 4);

    // The coach is renamed in Google, Mia is suspended (the SIS manages her), and the
    // coach's old address stays a match key.
    running.update_accounts(|all| {
        for a in all.iter_mut() {
            match a.id.as_str() {
                "g-coach" => a.primary_email = "ana.reyes@district.k12.us".into(),
                "g-mia" => a.suspended = true,
                _ => {}
            }
        }
    });
    let third = env.sync_source("google", SyncKind::Full, false);
    assert_eq!(third.status, RunStatus::Succeeded, "{third:?}");
    assert_eq!(third.counts.created, 0, "a rename makes no account");
    assert_eq!(third.counts.deactivated, 0, "{third:?}");
    let renamed = user(&env, "ana.reyes@district.k12.us");
    assert_eq!(renamed.id, coach.id);
    assert_eq!(renamed.email.as_deref(), Some("ana.reyes@district.k12.us"));
    assert_eq!(
        user(&env, "coach.reyes@district.k12.us").id,
        coach.id,
        "old address kept as an alias"
    );
    let mia = user(&env, "mia.johnson@students.district.k12.us");
    assert!(mia.active, "the SIS decides for its people");
    let mia_item = items(&env, &third)
        .into_iter()
        .find(|i| i.sourced_id == "g-mia")
        .expect("Mia's item");
    assert_eq!(mia_item.reason_code, "not_deactivated", "{mia_item:?}");
    // The SIS-active student whose Google account is suspended is in the stale report.
    let stale = env.store().report_stale(None, 0).unwrap();
    let row = stale
        .iter()
        .find(|s| s.id == mia.id)
        .unwrap_or_else(|| panic!("Mia not in {stale:?}"));
    assert_eq!(
        (row.source.as_str(), row.reason_code.as_str()),
        ("google", "suspended_in_provider"),
        "{row:?}"
    );

    // The coach (no SIS source links her) is suspended: deactivated; back: reactivated.
    running.update_accounts(|all| {
        if let Some(a) = all.iter_mut().find(|a| a.id == "g-coach") {
            a.suspended = true;
        }
    });
    let fourth = env.sync_source("google", SyncKind::Full, false);
    assert_eq!(fourth.counts.deactivated, 1, "{fourth:?}");
    assert!(!user(&env, "ana.reyes@district.k12.us").active);
    running.update_accounts(|all| {
        if let Some(a) = all.iter_mut().find(|a| a.id == "g-coach") {
            a.suspended = false;
        }
    });
    let fifth = env.sync_source("google", SyncKind::Full, false);
    assert_eq!(fifth.counts.reactivated, 1, "{fifth:?}");
    assert!(user(&env, "ana.reyes@district.k12.us").active);

    // The SIS sync after all this writes nothing and duplicates no one.
    let sis_again = env.sync(SyncKind::Full, false);
    assert_eq!(sis_again.counts.created, 0, "{sis_again:?}");
    assert_eq!(accounts(&env).len(), before + 1);
}

fn an_entra_delta_applies_changes_and_removals(env: Env) {
    let standin = env
        .runtime
        .block_on(EntraStandIn::start(vec![
            EntraUser::new("e-lucia", "lucia.ortiz@district.k12.us", "Lucia", "Ortiz"),
            EntraUser::new("e-temp", "temp.sub@district.k12.us", "Tem", "Sub"),
            {
                // A parent invited into the tenant: a guest, never one of the district's.
                let mut guest = EntraUser::new(
                    "e-guest",
                    "pat_example.com#EXT#@district.onmicrosoft.com",
                    "Pat",
                    "Williams",
                );
                guest.mail = Some("pat.williams@example.com".into());
                guest.user_type = Some("Guest".into());
                guest
            },
        ]))
        .unwrap();
    let source = format!(
        "[[source]]\nname = \"entra\"\nkind = \"entra-id\"\ntenant = \"{}\"\nclient_id = \"{}\"\ntoken_url = \"{}\"\ngraph_url = \"{}\"\n",
        entra::TENANT,
        entra::CLIENT_ID,
        standin.token_url(),
        standin.base_url()
    );
    configure(&env, &source, &[("entra", entra::CLIENT_SECRET)]);
    env.sync(SyncKind::Full, false);

    // A delta before any full read has nowhere to start from.
    let early = env.sync_source("entra", SyncKind::Delta, false);
    assert_eq!(early.status, RunStatus::Failed, "{early:?}");
    assert!(
        early
            .error
            .as_deref()
            .unwrap_or("")
            .contains("run a full sync first"),
        "{early:?}"
    );

    let full = env.sync_source("entra", SyncKind::Full, false);
    assert_eq!(full.status, RunStatus::Succeeded, "{full:?}");
    assert_eq!(
        (full.counts.linked, full.counts.created, full.counts.skipped),
        (1, 1, 1),
        "{full:?}"
    );
    let guest = items(&env, &full)
        .into_iter()
        .find(|i| i.sourced_id == "e-guest")
        .expect("the guest's item");
    assert_eq!(guest.reason_code, "guest_not_imported", "{guest:?}");
    assert!(
        env.store()
            .find_user("pat.williams@example.com")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        user(&env, "lucia.ortiz@district.k12.us")
            .provider
            .as_deref(),
        Some("microsoft")
    );

    // The substitute leaves (deleted in Entra): the delta says so and the account, which
    // no SIS source links, is deactivated; Lucia gets a name change the SIS owns.
    assert!(standin.remove("e-temp"));
    standin.update("e-lucia", |u| u.given_name = Some("Lucy".into()));
    let delta = env.sync_source("entra", SyncKind::Delta, false);
    assert_eq!(delta.status, RunStatus::Succeeded, "{delta:?}");
    assert_eq!(delta.kind, SyncKind::Delta);
    assert_eq!(delta.counts.deactivated, 1, "{delta:?}");
    assert!(!user(&env, "temp.sub@district.k12.us").active);
    assert_eq!(
        user(&env, "lucia.ortiz@district.k12.us")
            .first_name
            .as_deref(),
        Some("Lucia"),
        "the SIS owns the name"
    );
    // A dry run of another delta: nothing to do, nothing recorded.
    let dry = env.sync_source("entra", SyncKind::Delta, true);
    assert!(dry.run_id.is_none());
    assert_eq!(dry.counts.deactivated, 0, "{dry:?}");
}

fn a_provider_that_refuses_records_a_failed_run(env: Env) {
    let running = env
        .runtime
        .block_on(GoogleStandIn::start(vec![GoogleAccount::new(
            "g-1",
            "someone@district.k12.us",
            "Some",
            "One",
        )]))
        .unwrap();
    configure(
        &env,
        &google_source(&running),
        &[("google", &running.key_file())],
    );
    running.deny_user_reads(true);
    let before = accounts(&env).len();
    let out = env.sync_source("google", SyncKind::Full, false);
    assert_eq!(out.status, RunStatus::Failed, "{out:?}");
    let error = out.error.clone().unwrap_or_default();
    assert!(error.contains("source google"), "{error}");
    assert!(!error.contains("PRIVATE KEY"), "{error}");
    assert_eq!(accounts(&env).len(), before, "nothing written");
    let run = env.store().get_run(out.run_id.unwrap()).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    // Google has no changes-only read.
    running.deny_user_reads(false);
    let delta = env.sync_source("google", SyncKind::Delta, false);
    assert_eq!(delta.status, RunStatus::Failed);
    assert!(
        delta
            .error
            .unwrap_or_default()
            .contains("no changes-only read")
    );
}

/// What a Google run left: the accounts, the run's items and counts, the identities'
/// records, the review cases.
fn google_left_by(env: &Env, out: &SyncOutcome, ids: &[&str]) -> serde_json::Value {
    let store = env.store();
    let records: Vec<_> = ids
        .iter()
        .map(|id| store.sis_person("google", id).unwrap())
        .collect();
    serde_json::json!({
        "accounts": format!("{:?}", accounts(env)),
        "status": out.status,
        "counts": out.counts,
        "items": items(env, out),
        "records": records,
        "cases": store.review_cases(None, None, 0).unwrap(),
    })
}

/// An account source's plan of more items than a run may hold is made twice, as a SIS
/// run's is: once to count and guard it, then again as it is written (or handed out by a
/// dry run, or held). A district's first read links a million accounts; held whole, its
/// plan was the run's peak. Beside a store whose runs hold their plans whole: the same
/// dry run, the same first read, and a bad day (every account gone) held and approved
/// alike.
fn a_read_larger_than_a_run_holds_is_applied_as_it_is_made(env: Env) {
    let whole = env.fresh();
    env.max_plan_items.set(1);
    let running = env
        .runtime
        .block_on(GoogleStandIn::start(the_domain({
            // A second account that reaches Mia's address: both wait for a person.
            let mut a = student(
                "g-mia2",
                "mjohnson@students.district.k12.us",
                "Mia",
                "Johnson",
            );
            a.aliases = vec!["mia.johnson@students.district.k12.us".into()];
            a
        })))
        .unwrap();
    let ids = ["g-ava", "g-mia", "g-mia2", "g-coach", "g-old"];
    let source = format!(
        "{}\n[source.safeguards]\nmin_population = 1\n",
        google_source(&running).replace(
            "[source.user_mapping]",
            "deactivate = \"always\"\n\n[source.user_mapping]"
        )
    );
    for e in [&env, &whole] {
        configure(e, &source, &[("google", &running.key_file())]);
        let sis = e.sync(SyncKind::Full, false);
        assert_eq!(sis.status, RunStatus::Succeeded, "{sis:?}");
    }
    let listed = |items: &[rostersync_core::plan::PlanItem]| -> Vec<String> {
        items.iter().map(|i| format!("{i:?}")).collect()
    };
    // How many times each store's run said its plan was made again (and forget it).
    let made_again = |e: &Env| {
        let mut lines = e.progress.lock().unwrap();
        let n = lines
            .iter()
            .filter(|l| l.ends_with("the plan is made again as they are applied"))
            .count();
        lines.clear();
        n
    };
    made_again(&env);
    made_again(&whole);
    let (dry, dry_items) = env.preview_source("google", SyncKind::Full);
    let (dry_too, whole_items) = whole.preview_source("google", SyncKind::Full);
    assert_eq!((made_again(&env), made_again(&whole)), (1, 0));
    assert_eq!(dry.counts, dry_too.counts);
    assert_eq!(dry_items.len(), 5, "{dry_items:?}");
    assert_eq!(listed(&dry_items), listed(&whole_items));

    let first = env.sync_source("google", SyncKind::Full, false);
    let first_too = whole.sync_source("google", SyncKind::Full, false);
    assert_eq!((made_again(&env), made_again(&whole)), (1, 0));
    assert_eq!(counts(&first), (5, 1, 1, 0, 0, 3), "{first:?}");
    assert_eq!(
        google_left_by(&env, &first, &ids),
        google_left_by(&whole, &first_too, &ids)
    );
    assert!(
        env.store().sis_person("google", "g-ava").unwrap().is_some(),
        "the linked identity's record is kept"
    );
    let cases = env.store().review_cases(Some("open"), None, 0).unwrap();
    assert_eq!(cases.len(), 2, "Mia's two claimants wait: {cases:?}");

    // A bad day: Google answers with no account at all. Two deactivations of two linked:
    // held in both, approved in both, the same directory after.
    running.update_accounts(Vec::clear);
    let held = env.sync_source("google", SyncKind::Full, false);
    let held_too = whole.sync_source("google", SyncKind::Full, false);
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    assert_eq!(held.counts.deactivated, 2, "{held:?}");
    assert_eq!((made_again(&env), made_again(&whole)), (1, 0));
    assert_eq!(held.counts, held_too.counts);
    assert_eq!(held.hold, held_too.hold);
    let approve = |e: &Env, out: &SyncOutcome| {
        e.with_ctx(|ctx| engine::approve(ctx, out.run_id.unwrap(), "olivia", None))
            .unwrap()
    };
    let approved = approve(&env, &held);
    let approved_too = approve(&whole, &held_too);
    assert_eq!(
        approved.outcome.status,
        RunStatus::Succeeded,
        "{approved:?}"
    );
    assert_eq!(approved.outcome.counts, approved_too.outcome.counts);
    assert_eq!(
        google_left_by(&env, &held, &ids),
        google_left_by(&whole, &held_too, &ids)
    );
    assert!(!user(&env, "coach.reyes@district.k12.us").active);
}
