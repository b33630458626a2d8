//! The users list on SQLite and PostgreSQL: filters that ignore a grade's spelling and a
//! homeroom's case, the number of matches, sorting with keyset pages, the CSV export
//! (viewers too, formulas defused), and saved views (admins save and delete, everyone
//! opens; the API too). The browser walk is in `user_list_walk`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{App, Auth, Body, form, sample_district};
use crate::on_both;

/// Users the sample district gets on top of its own: grades spelled `5`, `05`,
/// `Grade 5` and `K`, and names a spreadsheet would run as formulas.
const EXTRA_USERS: &str = "\
usr-s-7,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100007,{SIS:100007},Ann,Five,,100007,ann.five@students.district.k12.us,,,,5,
usr-s-8,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100008,{SIS:100008},\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",Formula,,100008,formula@students.district.k12.us,,,,05,
usr-s-9,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100009,{SIS:100009},Kay,Kinder,,100009,kay.kinder@students.district.k12.us,,,,K,
usr-s-10,active,2026-08-01T00:00:00Z,true,org-elem-1,student,s100010,{SIS:100010},+Plus,\"@At, \"\"Quoted\"\"\",,100010,plus@students.district.k12.us,,,,Grade 5,
";

/// The sample district plus [`EXTRA_USERS`] as the CSV source `campus`, synced.
pub(crate) fn seed_district(app: &App) {
    let dir = app.dir.join("district");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(sample_district()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let users = dir.join("users.csv");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(EXTRA_USERS);
    std::fs::write(&users, text).unwrap();
    app.configure(&format!(
        "[[source]]\nname = \"campus\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n",
        dir.display()
    ));
    app.full_sync();
}

fn items(v: &Value) -> Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .clone()
}

fn usernames(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = items(v)
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

fn filters_counts_and_sorts(app: App) {
    seed_district(&app);
    let read = Auth::Bearer(app.read_token.clone());
    let get = |path: &str| {
        let r = app.get(path, &read);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    };
    // Grade 5 in any spelling finds 5, 05 and Grade 5.
    for five in ["5", "05", "Grade%205", "5th"] {
        assert_eq!(
            usernames(&get(&format!("/api/v1/users?grade={five}"))),
            ["s100007", "s100008", "s100010"],
            "grade={five}"
        );
    }
    // K finds KG and K.
    for k in ["K", "kg", "Kindergarten"] {
        assert_eq!(
            usernames(&get(&format!("/api/v1/users?grade={k}"))),
            ["s100001", "s100002", "s100009"],
            "grade={k}"
        );
    }
    // Homerooms in any case: the KG homeroom is in Room 4.
    let all = items(&get("/api/v1/users?limit=1000"));
    let in_room_4: Vec<String> = {
        let mut v: Vec<String> = all
            .iter()
            .filter(|u| u["homeroom"] == "Room 4")
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert!(in_room_4.contains(&"s100001".to_owned()), "{in_room_4:?}");
    for spelling in ["Room%204", "room%204", "ROOM%20%204%20"] {
        assert_eq!(
            usernames(&get(&format!("/api/v1/users?homeroom={spelling}"))),
            in_room_4,
            "homeroom={spelling}"
        );
    }
    // Counts: on request, over every match whatever the page size.
    let counted = get("/api/v1/users?grade=5&limit=1&count=true");
    assert_eq!(counted["total"], 3);
    assert_eq!(items(&counted).len(), 1);
    assert!(
        get("/api/v1/users?grade=5").get("total").is_none(),
        "no count unless asked"
    );
    assert_eq!(
        get("/api/v1/users?count=true&limit=1")["total"]
            .as_u64()
            .unwrap() as usize,
        all.len()
    );
    assert_eq!(app.get("/api/v1/users?count=maybe", &read).status, 400);
    let bad = app.get("/api/v1/users?sort=height", &read);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("sort by one of"), "{}", bad.body);

    // Sorted by name, descending: the order of the names, and pages of 2 by the cursor
    // give the same list.
    let whole = items(&get("/api/v1/users?sort=-name&limit=1000"));
    let ids: Vec<i64> = whole.iter().map(|u| u["id"].as_i64().unwrap()).collect();
    let keys: Vec<String> = whole
        .iter()
        .map(|u| {
            [
                &u["first_name"],
                &u["middle_name"],
                &u["last_name"],
                &u["preferred_name"],
            ]
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "by name, descending");
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let path = match &after {
            Some(c) => format!(
                "/api/v1/users?sort=-name&limit=2&after={}",
                crate::harness::enc(c)
            ),
            None => "/api/v1/users?sort=-name&limit=2".to_owned(),
        };
        let page = get(&path);
        assert!(
            page["next_after"].is_null(),
            "next_after is for the id order"
        );
        paged.extend(items(&page).iter().map(|u| u["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, ids, "pages of 2 by next_cursor");
    // Grades sort in grade order: K before 5 before 09.
    let by_grade: Vec<String> = items(&get("/api/v1/users?sort=grade&type=student"))
        .iter()
        .filter_map(|u| u["grade"].as_str().map(str::to_owned))
        .collect();
    let first = |g: &str| by_grade.iter().position(|x| x == g).unwrap();
    assert!(
        first("K") < first("5") && first("5") < first("09"),
        "{by_grade:?}"
    );
    // The id order's next_after still pages as before.
    let p1 = get("/api/v1/users?limit=3");
    let p2 = get(&format!("/api/v1/users?limit=3&after={}", p1["next_after"]));
    assert_eq!(
        p2["items"][0]["id"].as_i64().unwrap(),
        ids_sorted(&all)[3],
        "after=ID"
    );

    // The console page: the count, the headers that sort, the next page.
    let viewer = app.login("vera");
    let page = app.get("/users?grade=5&sort=name", &viewer);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("3 users match"), "{}", page.body);
    assert!(page.body.contains("aria-sort=\"ascending\""));
    assert!(
        page.body
            .contains("href=\"/users?grade=5&#38;sort=-name\" id=\"sort-name\""),
        "the sorted column's header reverses it: {}",
        page.body
    );
    assert!(
        page.body
            .contains("href=\"/users.csv?grade=5&#38;sort=name\"")
    );
    let none = app.get("/users?grade=7", &viewer);
    assert!(none.body.contains("No users match"));
    let bad = app.get("/users?type=teacher", &viewer);
    assert_eq!(bad.status, 400, "{}", bad.body);
}

fn ids_sorted(all: &[Value]) -> Vec<i64> {
    let mut v: Vec<i64> = all.iter().map(|u| u["id"].as_i64().unwrap()).collect();
    v.sort();
    v
}

/// Splits CSV text into records of cells (quotes, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

fn csv_export_is_filtered_sorted_and_defused(app: App) {
    seed_district(&app);
    let viewer = app.login("vera");
    let r = app.get("/users.csv?grade=5&sort=-name", &viewer);
    assert_eq!(r.status, 200, "viewers export too: {}", r.body);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        r.headers
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"users.csv\"")
    );
    assert!(r.body.starts_with("id,first_name,last_name,"), "{}", r.body);
    assert!(r.body.contains("\r\n"), "CRLF lines");
    let rows = parse_csv(&r.body);
    assert_eq!(rows.len(), 4, "header and grade 5's three: {}", r.body);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let firsts: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r[col("first_name")].as_str())
        .collect();
    // By name descending: "+plus …" < "=hyperlink…" < "ann five" bytewise, reversed.
    assert_eq!(
        firsts,
        [
            "Ann",
            "'=HYPERLINK(\"http://evil.example\",\"x\")",
            "'+Plus"
        ],
        "{}",
        r.body
    );
    let plus = &rows[3];
    assert_eq!(plus[col("last_name")], "'@At, \"Quoted\"");
    assert_eq!(
        plus[col("grade")],
        "Grade 5",
        "grades as the SIS spells them"
    );
    assert_eq!(plus[col("sis_source")], "campus");
    assert_eq!(plus[col("sis_sourced_id")], "usr-s-10");
    assert!(
        r.body.contains("\"'@At, \"\"Quoted\"\"\""),
        "quoted with doubled quotes: {}",
        r.body
    );
    // Every account when unfiltered: one row each, the same number the page counts.
    let everyone = app.get("/users.csv", &viewer);
    let count = app
        .get(
            "/api/v1/users?count=true&limit=1",
            &Auth::Bearer(app.read_token.clone()),
        )
        .json()["total"]
        .as_u64()
        .unwrap();
    assert_eq!(parse_csv(&everyone.body).len() as u64, count + 1);
    // Bad filters are refused before anything is sent; the export is audited.
    assert_eq!(app.get("/users.csv?linked=maybe", &viewer).status, 400);
    let log = app
        .get("/api/v1/audit", &Auth::Bearer(app.read_token.clone()))
        .json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "users.export"
                && e["actor"] == "console:vera"
                && e["detail"] == "grade 5, sorted by name, descending"),
        "{log:#}"
    );
    assert_eq!(
        app.get("/users.csv", &Auth::None).status,
        303,
        "signed in only"
    );
}

fn saved_views_are_saved_opened_and_deleted(app: App) {
    seed_district(&app);
    let admin = app.login("adam");
    let viewer = app.login("vera");
    // An admin saves the list's filters and sort; the answer shows that list.
    let saved = app.request(
        Method::POST,
        "/users/views",
        &admin,
        form(&[
            ("name", "Grade 5 by name"),
            ("grade", "5"),
            ("sort", "-name"),
            ("search", ""),
        ]),
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert!(
        saved.location().starts_with("/users?grade=5&sort=-name"),
        "{}",
        saved.location()
    );
    let shown = app.follow(&saved, &admin);
    assert!(
        shown.body.contains("saved view &#39;Grade 5 by name&#39;"),
        "{}",
        shown.body
    );
    assert!(
        shown.body.contains("(showing)"),
        "the view is the list shown"
    );
    // A viewer cannot save or delete, but sees the view and opens it.
    let refused = app.request(
        Method::POST,
        "/users/views",
        &viewer,
        form(&[("name", "Mine"), ("grade", "K")]),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let page = app.get("/users", &viewer);
    assert!(page.body.contains("Grade 5 by name"), "{}", page.body);
    assert!(
        page.body
            .contains("href=\"/users?grade=5&#38;sort=-name\" class=\"saved-view\"")
    );
    assert!(
        !page.body.contains("id=\"save-view\""),
        "no Save form for a viewer"
    );
    assert!(!page.body.contains("delete-view"), "no Delete for a viewer");
    let opened = app.get("/users?grade=5&sort=-name", &viewer);
    assert!(opened.body.contains("3 users match"));

    // The API: list (read), save and delete (write).
    let read = Auth::Bearer(app.read_token.clone());
    let write = Auth::Bearer(app.write_token.clone());
    let views = app.get("/api/v1/user-views", &read).json();
    assert_eq!(views.as_array().unwrap().len(), 1);
    let view = &views[0];
    assert_eq!(view["name"], "Grade 5 by name");
    assert_eq!(view["params"], json!({"grade": "5", "sort": "-name"}));
    assert_eq!(view["url"], "/users?grade=5&sort=-name");
    assert_eq!(view["saved_by"], "console:adam");
    let id = view["id"].as_i64().unwrap();
    let body = json!({"name": "Kindergarten", "params": {"grade": "K", "active": true}});
    assert_eq!(
        app.request(
            Method::POST,
            "/api/v1/user-views",
            &read,
            Some(Body::Json(body.clone()))
        )
        .status,
        403,
        "a read token cannot save"
    );
    let made = app.request(
        Method::POST,
        "/api/v1/user-views",
        &write,
        Some(Body::Json(body)),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.json()["replaced"], false);
    assert_eq!(made.json()["description"], "active, grade K");
    let unknown = app.request(
        Method::POST,
        "/api/v1/user-views",
        &write,
        Some(Body::Json(json!({"name": "x", "params": {"after": "3"}}))),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let blank = app.request(
        Method::POST,
        "/api/v1/user-views",
        &write,
        Some(Body::Json(json!({"name": " ", "params": {}}))),
    );
    assert_eq!(blank.status, 400, "{}", blank.body);
    let kid = made.json()["id"].as_i64().unwrap();
    let gone = app.request(
        Method::DELETE,
        &format!("/api/v1/user-views/{kid}"),
        &write,
        None,
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(
        app.request(
            Method::DELETE,
            &format!("/api/v1/user-views/{kid}"),
            &write,
            None
        )
        .status,
        404
    );

    // The admin deletes the first from the page.
    assert_eq!(
        app.request(
            Method::POST,
            &format!("/users/views/{id}/delete"),
            &viewer,
            form(&[])
        )
        .status,
        403
    );
    let deleted = app.request(
        Method::POST,
        &format!("/users/views/{id}/delete"),
        &admin,
        form(&[]),
    );
    assert_eq!(deleted.status, 303);
    let after = app.follow(&deleted, &admin);
    assert!(after.body.contains("No saved views yet"), "{}", after.body);
    let log = app.get("/api/v1/audit", &read).json();
    let actions: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("view."))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("view.delete".to_owned(), "console:adam".to_owned()),
            ("view.delete".to_owned(), "token:#2 write".to_owned()),
            ("view.save".to_owned(), "token:#2 write".to_owned()),
            ("view.save".to_owned(), "console:adam".to_owned()),
        ]
    );
}

on_both!(user_list, crate::harness::plain;
    filters_counts_and_sorts,
    csv_export_is_filtered_sorted_and_defused,
    saved_views_are_saved_opened_and_deleted,
);
