//! SCIM writes through the engine's API, after a SIS sync of the sample district: a pushed
//! account of a SIS person links to the SIS's account (never a second one), a new one is
//! made, an update keeps the old address as an alias and leaves the SIS's fields alone, a
//! removal deactivates only what no SIS source links, and an identity claiming another
//! identity's account is refused and waits for a person. Each write is a run of kind
//! `scim`.

use engine::{ScimChange, ScimWrite};
use rostersync_core::accounts::Identity;
use rostersync_core::plan::{Outcome, SyncKind};
use store::RunStatus;

use crate::harness::{Env, sample_district};

crate::on_both!(
    pushed_accounts_link_update_and_deactivate_by_the_rules,
    a_burst_of_pushed_deactivations_is_held_until_approved,
);

fn identity(id: &str, login: &str, given: &str, family: &str) -> Identity {
    Identity {
        id: id.into(),
        login: login.into(),
        email: Some(login.into()),
        aliases: Vec::new(),
        given_name: Some(given.into()),
        middle_name: None,
        family_name: Some(family.into()),
        suspended: false,
        guest: false,
        org_unit: None,
        school_id: None,
        last_sign_in: None,
    }
}

fn write(env: &Env, change: ScimChange) -> ScimWrite {
    env.with_ctx(|ctx| engine::scim_write(ctx, "entra", change, None))
        .unwrap()
}

fn pushed_accounts_link_update_and_deactivate_by_the_rules(env: Env) {
    env.configure(&format!(
        "[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n[[source]]\nname = \"entra\"\nkind = \"scim\"\n",
        sample_district().display()
    ));
    env.sync(SyncKind::Full, false);
    let lucia = env
        .store()
        .find_user("lucia.ortiz@district.k12.us")
        .unwrap()
        .unwrap()
        .user;

    // A SIS person's account, pushed by the IdP: linked, not duplicated.
    let linked = write(
        &env,
        ScimChange::Create(identity(
            "ext-lucia",
            "lucia.ortiz@district.k12.us",
            "Lucy",
            "Ortiz",
        )),
    );
    assert_eq!(linked.outcome.status, RunStatus::Succeeded, "{linked:?}");
    assert_eq!(linked.outcome.kind, SyncKind::Scim);
    assert_eq!(linked.account, Some(lucia.id));
    assert_eq!(
        linked.item.as_ref().map(|i| i.outcome),
        Some(Outcome::Linked)
    );
    let after = env.store().get_user(lucia.id).unwrap().unwrap().user;
    assert_eq!(
        after.first_name.as_deref(),
        Some("Lucia"),
        "the SIS keeps its name"
    );
    assert_eq!(after.provider.as_deref(), Some("scim:entra"));

    // Someone only the IdP knows: a new account.
    let made = write(
        &env,
        ScimChange::Create(identity(
            "ext-sub",
            "sub.teacher@district.k12.us",
            "Sam",
            "Sub",
        )),
    );
    assert_eq!(
        made.item.as_ref().map(|i| i.outcome),
        Some(Outcome::Created)
    );
    let sub = made.account.expect("the new account's id");

    // Renamed in the IdP: the email follows (this connection wrote it), the old one stays
    // an alias.
    let renamed = write(
        &env,
        ScimChange::Update {
            account: sub,
            external_id: None,
            identity: identity("ignored", "sam.sub@district.k12.us", "Sam", "Sub"),
        },
    );
    assert_eq!(renamed.account, Some(sub), "{renamed:?}");
    let now = env.store().get_user(sub).unwrap().unwrap().user;
    assert_eq!(now.email.as_deref(), Some("sam.sub@district.k12.us"));
    assert_eq!(
        env.store()
            .find_user("sub.teacher@district.k12.us")
            .unwrap()
            .unwrap()
            .user
            .id,
        sub
    );

    // Another identity claiming Lucía's account: refused, waiting for a person.
    let claim = write(
        &env,
        ScimChange::Create(identity(
            "ext-impostor",
            "lucia.ortiz@district.k12.us",
            "L",
            "O",
        )),
    );
    let item = claim.item.expect("an item");
    assert!(item.reason.needs_review(), "{item:?}");
    assert_eq!(claim.account, None);

    // Removed in the IdP: the substitute (no SIS source links them) is deactivated; Lucía
    // (the SIS's) stays active.
    let gone = write(&env, ScimChange::Remove { account: sub });
    assert_eq!(gone.outcome.counts.deactivated, 1, "{gone:?}");
    assert!(!env.store().get_user(sub).unwrap().unwrap().user.active);
    let kept = write(&env, ScimChange::Remove { account: lucia.id });
    assert_eq!(kept.outcome.counts.deactivated, 0, "{kept:?}");
    assert!(env.store().get_user(lucia.id).unwrap().unwrap().user.active);
    // Her identity is recorded as gone: the stale report shows the active account.
    let stale = env.store().report_stale(None, 0).unwrap();
    assert!(
        stale
            .iter()
            .any(|s| s.id == lucia.id && s.reason_code == "gone_from_provider"),
        "{stale:?}"
    );

    // Every write was a run of the connection.
    let runs = env.store().runs_of(Some("entra"), None, 0).unwrap();
    assert_eq!(runs.len(), 6);
    assert!(runs.iter().all(|r| r.kind == SyncKind::Scim));
}

fn a_burst_of_pushed_deactivations_is_held_until_approved(env: Env) {
    env.configure(
        "[[source]]\nname = \"entra\"\nkind = \"scim\"\n\n[source.safeguards]\nmax_deactivations = 2\n",
    );
    let ids: Vec<_> = (1..=5)
        .map(|n| {
            let login = format!("staff{n}@district.k12.us");
            write(
                &env,
                ScimChange::Create(identity(&format!("ext-{n}"), &login, "Staff", "Member")),
            )
            .account
            .expect("made")
        })
        .collect();
    // Two deactivations within the hour are within the limit.
    for id in &ids[..2] {
        let done = write(&env, ScimChange::Remove { account: *id });
        assert_eq!(done.outcome.status, RunStatus::Succeeded, "{done:?}");
    }
    // The third is held: nothing applied, the account still active.
    let held = write(&env, ScimChange::Remove { account: ids[2] });
    assert_eq!(held.outcome.status, RunStatus::Held, "{held:?}");
    assert!(
        held.outcome.hold[0].detail.contains("3 deactivations"),
        "{held:?}"
    );
    assert!(env.store().get_user(ids[2]).unwrap().unwrap().user.active);
    // The provider sends it again: the same held run, not a second one.
    let again = write(&env, ScimChange::Remove { account: ids[2] });
    assert_eq!(again.outcome.run_id, held.outcome.run_id);
    // A later write that applies does not supersede the held one.
    let other = write(
        &env,
        ScimChange::Create(identity("ext-9", "late@district.k12.us", "Late", "Comer")),
    );
    assert_eq!(other.outcome.status, RunStatus::Succeeded);
    let run = held.outcome.run_id.unwrap();
    assert_eq!(
        env.store().get_run(run).unwrap().unwrap().status,
        RunStatus::Held
    );
    // An admin approves it: applied.
    let approval = env
        .with_ctx(|ctx| engine::approve(ctx, run, "admin", None))
        .unwrap();
    assert_eq!(
        approval.outcome.status,
        RunStatus::Succeeded,
        "{approval:?}"
    );
    assert!(!env.store().get_user(ids[2]).unwrap().unwrap().user.active);
}
