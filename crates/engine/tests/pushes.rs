//! Pushes to a SCIM target through the engine's API, against the simulated help desk
//! (`sim::helpdesk`) after a SIS sync of the sample district: the first push creates every
//! selected account; a second sends nothing; SIS churn sends exactly the changes
//! (deactivations as `active: false`); a help desk that has staff accounts already gets
//! them adopted, not duplicated; a 429 storm is ridden out; a target that drops mid-push
//! leaves a failed, incomplete run that the next push completes; a push deactivating too
//! many is held, then approved; a dry run sends no write.

use engine::{PushOutcome, PushRequest};
use rostersync_core::directory::UserType;
use rostersync_core::plan::SyncKind;
use rostersync_core::settings::Config;
use serde_json::{Value, json};
use sim::helpdesk::Helpdesk;
use store::{RunStatus, Trigger, UserQuery};

use crate::harness::{Env, copy_sample, sample_district};

crate::on_both!(
    a_first_push_creates_the_selected_accounts_and_a_second_sends_nothing,
    sis_churn_sends_exactly_the_changes,
    staff_the_help_desk_has_are_adopted_not_duplicated,
    a_429_storm_is_ridden_out_and_a_dropped_target_resumes,
    a_mass_deactivation_is_held_then_approved,
    a_dry_run_reads_but_sends_no_write,
    the_third_party_scim2_server_receives_the_directory,
);

const TOKEN: &str = "helpdesk-bearer-token";

/// The SIS source `sis` at `path` and the target `helpdesk` at `desk` (`extra` target
/// settings), its token sealed with the test key.
fn configure(env: &Env, path: &std::path::Path, desk: &Helpdesk, extra: &str) {
    let toml = format!(
        "[network]\nallow_loopback = true\n\n[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n\
         [[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"{}\"\nretry_attempts = 3\n{extra}",
        path.display(),
        desk.url()
    );
    let config = Config::from_toml(&toml).unwrap();
    env.store()
        .save_config(
            &config,
            &[(
                "helpdesk".into(),
                Some(env.keyring.encrypt(TOKEN.as_bytes())),
            )],
            "test",
            env.now(),
        )
        .unwrap();
}

fn start_desk(env: &Env) -> Helpdesk {
    env.runtime.block_on(Helpdesk::start(TOKEN)).unwrap()
}

fn push(env: &Env, dry_run: bool) -> PushOutcome {
    env.with_ctx(|ctx| {
        engine::push(
            ctx,
            &PushRequest {
                target: "helpdesk".into(),
                dry_run,
                trigger: Trigger::Cli,
            },
            None,
        )
    })
    .unwrap()
}

/// The accounts the default selection pushes: active, not guardians.
fn selected(env: &Env) -> Vec<rostersync_core::directory::Account> {
    env.store()
        .list_users(&UserQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.user)
        .filter(|u| u.active && u.user_type != UserType::Guardian && u.merged_into.is_none())
        .collect()
}

fn by_external_id<'a>(users: &'a [Value], id: &str) -> &'a Value {
    users
        .iter()
        .find(|u| u["externalId"] == id)
        .unwrap_or_else(|| panic!("no user with externalId {id} on the help desk: {users:?}"))
}

fn writes(desk: &Helpdesk) -> Vec<(String, String)> {
    desk.requests()
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect()
}

fn a_first_push_creates_the_selected_accounts_and_a_second_sends_nothing(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    assert_eq!(env.sync(SyncKind::Full, false).status, RunStatus::Succeeded);
    let want = selected(&env);
    assert!(want.len() >= 8, "{want:?}");

    let first = push(&env, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert!(first.complete);
    assert_eq!(first.counts.created, want.len() as u64, "{first:?}");
    assert_eq!(first.counts.errors, 0);
    let users = desk.users();
    assert_eq!(users.len(), want.len());
    for a in &want {
        let u = by_external_id(&users, &a.id.to_string());
        assert_eq!(u["active"], true);
        let user_name = a.email.clone().or(a.username.clone()).unwrap();
        assert_eq!(u["userName"], user_name.as_str());
        if let Some(first) = &a.first_name {
            assert_eq!(u["name"]["givenName"], first.as_str());
        }
    }
    // The run is recorded with an item per account, kind push.
    let run = env.store().get_run(first.run_id.unwrap()).unwrap().unwrap();
    assert_eq!(run.kind, SyncKind::Push);
    assert_eq!(run.source, "helpdesk");
    let items = env
        .store()
        .run_items(first.run_id.unwrap(), None, 0, 0)
        .unwrap();
    assert_eq!(items.len(), want.len());
    assert!(
        items.iter().all(|i| i.reason_code == "pushed_new"),
        "{items:?}"
    );

    desk.clear_requests();
    let second = push(&env, false);
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(second.counts.unchanged, want.len() as u64, "{second:?}");
    assert_eq!(
        (
            second.counts.created,
            second.counts.updated,
            second.counts.deactivated
        ),
        (0, 0, 0)
    );
    assert_eq!(second.http_requests, 0);
    assert!(desk.requests().is_empty(), "{:?}", desk.requests());
}

fn sis_churn_sends_exactly_the_changes(env: Env) {
    let desk = start_desk(&env);
    let path = copy_sample(&env.dir, "district");
    configure(&env, &path, &desk, "");
    env.sync(SyncKind::Full, false);
    assert_eq!(push(&env, false).status, RunStatus::Succeeded);
    // The SIS renames a teacher and drops a student.
    let users_csv = path.join("users.csv");
    let text = std::fs::read_to_string(&users_csv).unwrap();
    let text = text
        .replace(
            "usr-t-1,active,2026-08-01T00:00:00Z,true,org-elem-1,teacher,lortiz,{LDAP:9001},Lucia,Ortiz,",
            "usr-t-1,active,2026-09-01T00:00:00Z,true,org-elem-1,teacher,lortiz,{LDAP:9001},Lucia,Ortiz-Reyes,",
        )
        .replace(
            "usr-s-5,active,2026-08-01T00:00:00Z,true,",
            "usr-s-5,tobedeleted,2026-09-01T00:00:00Z,false,",
        );
    std::fs::write(&users_csv, text).unwrap();
    let sync = env.sync(SyncKind::Full, false);
    assert_eq!(sync.status, RunStatus::Succeeded, "{sync:?}");
    let teacher = env
        .store()
        .find_user("lucia.ortiz@district.k12.us")
        .unwrap()
        .unwrap()
        .user;
    let student = env
        .store()
        .find_user("sofia.garcia@students.district.k12.us")
        .unwrap()
        .unwrap()
        .user;
    assert!(!student.active, "the SIS sync deactivated the student");

    desk.clear_requests();
    let churn = push(&env, false);
    assert_eq!(churn.status, RunStatus::Succeeded, "{churn:?}");
    assert_eq!(
        (churn.counts.updated, churn.counts.deactivated),
        (1, 1),
        "{churn:?}"
    );
    assert_eq!(churn.counts.created, 0);
    let sent = writes(&desk);
    assert_eq!(sent.len(), 2, "exactly two writes: {sent:?}");
    assert!(sent.iter().all(|(m, _)| m == "PATCH"), "{sent:?}");
    let users = desk.users();
    let t = by_external_id(&users, &teacher.id.to_string());
    assert_eq!(t["name"]["familyName"], "Ortiz-Reyes");
    assert_eq!(t["displayName"], "Lucia Ortiz-Reyes");
    let s = by_external_id(&users, &student.id.to_string());
    assert_eq!(
        s["active"], false,
        "deactivated as active:false, not deleted"
    );
    // The teacher's item says what changed.
    let items = env
        .store()
        .run_items(churn.run_id.unwrap(), None, 0, 0)
        .unwrap();
    let item = items
        .iter()
        .find(|i| i.user_id == Some(teacher.id))
        .unwrap();
    assert_eq!(item.changes.len(), 1, "{item:?}");
    assert_eq!(item.changes[0].new.as_deref(), Some("Ortiz-Reyes"));

    desk.clear_requests();
    let quiet = push(&env, false);
    assert_eq!(quiet.http_requests, 0, "{quiet:?}");
}

fn staff_the_help_desk_has_are_adopted_not_duplicated(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    env.sync(SyncKind::Full, false);
    // The help desk has had Tam Nguyen's and Jay Patel's accounts for years, keyed by
    // email, in another case.
    desk.insert(json!({"userName": "Tam.Nguyen@district.k12.us", "name": {"givenName": "Tam", "familyName": "N."}, "active": true}));
    desk.insert(json!({"userName": "jpatel-helpdesk", "emails": [{"value": "jay.patel@district.k12.us", "type": "work"}], "active": true}));
    let want = selected(&env);
    let out = push(&env, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    let items = env
        .store()
        .run_items(out.run_id.unwrap(), None, 0, 0)
        .unwrap();
    assert_eq!(out.counts.linked, 2, "{items:?}");
    assert_eq!(out.counts.created, want.len() as u64 - 2);
    let users = desk.users();
    assert_eq!(users.len(), want.len(), "no duplicates: {users:?}");
    let tam = env
        .store()
        .find_user("tam.nguyen@district.k12.us")
        .unwrap()
        .unwrap()
        .user;
    let adopted = by_external_id(&users, &tam.id.to_string());
    assert_eq!(
        adopted["name"]["familyName"], "Nguyen",
        "the directory's values replaced the help desk's"
    );
    let items = env
        .store()
        .run_items(out.run_id.unwrap(), None, 0, 0)
        .unwrap();
    let codes: Vec<&str> = items.iter().map(|i| i.reason_code.as_str()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "push_adopted").count(),
        2,
        "{codes:?}"
    );
    // Adopted users are held like created ones: nothing to send next time.
    desk.clear_requests();
    assert_eq!(push(&env, false).http_requests, 0);
}

fn a_429_storm_is_ridden_out_and_a_dropped_target_resumes(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    env.sync(SyncKind::Full, false);
    let want = selected(&env);
    // Two answers of 429 (Retry-After: 1 s) are waited out: nothing fails.
    desk.throttle(2, 1);
    desk.fail_after(6);
    let first = push(&env, false);
    assert_eq!(first.status, RunStatus::Failed, "{first:?}");
    assert!(!first.complete);
    assert!(
        first
            .error
            .as_deref()
            .unwrap()
            .contains("stopped answering"),
        "{first:?}"
    );
    let held_before = desk.users().len();
    assert!(held_before > 0 && held_before < want.len(), "{held_before}");
    desk.heal();
    let second = push(&env, false);
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    assert!(second.complete);
    let users = desk.users();
    assert_eq!(
        users.len(),
        want.len(),
        "resumed without duplicates: {users:?}"
    );
    for a in &want {
        by_external_id(&users, &a.id.to_string());
    }
    desk.clear_requests();
    assert_eq!(push(&env, false).http_requests, 0);
}

fn a_mass_deactivation_is_held_then_approved(env: Env) {
    let desk = start_desk(&env);
    configure(
        &env,
        &sample_district(),
        &desk,
        "[target.safeguards]\nmax_deactivations = 2\n",
    );
    env.sync(SyncKind::Full, false);
    assert_eq!(push(&env, false).status, RunStatus::Succeeded);
    // The target now follows teachers only: everyone else would be deactivated there.
    configure(
        &env,
        &sample_district(),
        &desk,
        "types = [\"faculty\"]\n[target.safeguards]\nmax_deactivations = 2\n",
    );
    desk.clear_requests();
    let held = push(&env, false);
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    assert!(held.counts.deactivated > 2);
    assert!(writes(&desk).is_empty(), "a held push sends nothing");
    let run = held.run_id.unwrap();
    let approval = env
        .with_ctx(|ctx| engine::approve(ctx, run, "admin", None))
        .unwrap();
    assert_eq!(
        approval.outcome.status,
        RunStatus::Succeeded,
        "{approval:?}"
    );
    assert_eq!(approval.outcome.counts.deactivated, held.counts.deactivated);
    let inactive = desk.users().iter().filter(|u| u["active"] == false).count() as u64;
    assert_eq!(inactive, held.counts.deactivated);
    let record = env.store().get_run(run).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Succeeded);
    // A push cannot be undone.
    let undo = env.with_ctx(|ctx| engine::undo(ctx, run, "admin", false, None));
    assert!(
        undo.unwrap_err()
            .to_string()
            .contains("cannot be taken back")
    );
}

fn a_dry_run_reads_but_sends_no_write(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    env.sync(SyncKind::Full, false);
    let want = selected(&env);
    let dry = push(&env, true);
    assert_eq!(dry.run_id, None);
    assert_eq!(dry.requests.len(), want.len(), "{dry:?}");
    assert!(dry.requests.iter().all(|r| r.method == scim::Method::Post));
    assert!(writes(&desk).is_empty());
    assert!(desk.users().is_empty());
    assert!(
        env.store()
            .list_runs(0)
            .unwrap()
            .iter()
            .all(|r| r.kind != SyncKind::Push)
    );
}

/// The same story against a SCIM server nobody here wrote (PyPI `scim2-server`, started
/// by `test_kit::ScimServer`): first push, a no-change push, SIS churn, adoption.
fn the_third_party_scim2_server_receives_the_directory(env: Env) {
    let Some(server) = test_kit::ScimServer::start() else {
        return;
    };
    // A user the server had before rostersync: adopted by its email.
    let existing = idp::scim_target::ScimTarget::new(
        &server.url(),
        server.token(),
        engine::address_policy(&rostersync_core::settings::Network {
            allow_loopback: true,
            allow_private: false,
        }),
        std::time::Duration::from_secs(10),
        idp::http::Retry::default(),
    )
    .unwrap();
    env.runtime
        .block_on(existing.write(&scim::Request::create(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "rbaker-desk",
            "emails": [{"value": "ruth.baker@district.k12.us", "type": "work"}],
            "active": true
        }))))
        .unwrap();
    let path = copy_sample(&env.dir, "district");
    let toml = format!(
        "[network]\nallow_loopback = true\n\n[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n\
         [[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"{}\"\nretry_attempts = 3\n",
        path.display(),
        server.url()
    );
    env.store()
        .save_config(
            &Config::from_toml(&toml).unwrap(),
            &[(
                "helpdesk".into(),
                Some(env.keyring.encrypt(server.token().as_bytes())),
            )],
            "test",
            env.now(),
        )
        .unwrap();
    env.sync(SyncKind::Full, false);
    let want = selected(&env);

    let first = push(&env, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_eq!(first.counts.errors, 0, "{first:?}");
    assert_eq!(
        (first.counts.created, first.counts.linked),
        (want.len() as u64 - 1, 1)
    );
    let users = server.users();
    assert_eq!(users.len(), want.len(), "{users:?}");
    for a in &want {
        let u = by_external_id(&users, &a.id.to_string());
        assert_eq!(u["active"], true);
    }

    let again = push(&env, false);
    assert_eq!(again.http_requests, 0, "{again:?}");

    let users_csv = path.join("users.csv");
    let text = std::fs::read_to_string(&users_csv)
        .unwrap()
        .replace(",Lucia,Ortiz,", ",Lucia,Ortiz-Reyes,")
        .replace(
            "usr-s-5,active,2026-08-01T00:00:00Z,true,",
            "usr-s-5,tobedeleted,2026-09-01T00:00:00Z,false,",
        );
    std::fs::write(&users_csv, text).unwrap();
    env.sync(SyncKind::Full, false);
    let churn = push(&env, false);
    assert_eq!(churn.status, RunStatus::Succeeded, "{churn:?}");
    assert_eq!(
        (churn.counts.updated, churn.counts.deactivated),
        (1, 1),
        "{churn:?}"
    );
    assert_eq!(churn.http_requests, 2, "one PATCH each: {churn:?}");
    let users = server.users();
    let teacher = env
        .store()
        .find_user("lucia.ortiz@district.k12.us")
        .unwrap()
        .unwrap()
        .user;
    let student = env
        .store()
        .find_user("sofia.garcia@students.district.k12.us")
        .unwrap()
        .unwrap()
        .user;
    assert_eq!(
        by_external_id(&users, &teacher.id.to_string())["name"]["familyName"],
        "Ortiz-Reyes"
    );
    assert_eq!(
        by_external_id(&users, &student.id.to_string())["active"],
        false
    );
}
