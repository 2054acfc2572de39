//! Leads (issue 13): CSV imports through both upload paths and the SQS-triggered worker as
//! Lambda hands it its batches; exact counters and row errors; dedupe against existing leads,
//! inside a file and across concurrent imports; a worker killed mid-file; candidate time
//! zones; the do-not-call list; the leads API with its roles, tenancy and bad input.

use axum::body::Body;
use callplane::ids::ImportJobId;
use callplane::service::lead_import::run;
use callplane_tests::Stack;
use callplane_tests::world::{import, multipart, post_multipart, work};
use http::{Method, Request};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// An establishment in the US (national numbers are read as US numbers) with its admin, an
/// operator and a viewer.
struct World {
    stack: Stack,
    admin: String,
    operator: String,
    viewer: String,
    est: String,
}

async fn world() -> World {
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack
        .establishment_in(&admin, "Dental Leads", "America/New_York", "en-US")
        .await;
    let operator = stack
        .member(&admin, &est, "operator@leads.test", "operator")
        .await;
    let viewer = stack
        .member(&admin, &est, "viewer@leads.test", "viewer")
        .await;
    World {
        stack,
        admin,
        operator,
        viewer,
        est,
    }
}

/// `GET /leads/import/{job}` as `token`.
async fn job(stack: &Stack, token: &str, id: &str) -> Value {
    stack
        .get(&format!("/leads/import/{id}"), token)
        .await
        .expect(200)
        .clone()
}

/// Every page of `path`, as `token`.
async fn all(stack: &Stack, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=100&cursor={c}"),
            None => format!("{path}{sep}limit=100"),
        };
        let page = stack.get(&url, token).await.expect(200).clone();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// The E.164 of test number `i` (a valid US number).
fn e164(i: usize) -> String {
    format!("+1201555{:04}", i)
}

/// Test number `i` as people write it: national, international with dashes, or bare digits.
fn written(i: usize) -> String {
    let n = format!("{:04}", i);
    match i % 3 {
        0 => format!("(201) 555-{n}"),
        1 => format!("+1 201-555-{n}"),
        _ => format!("201555{n}"),
    }
}

/// What row `i` of the thousand is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    InvalidPhone,
    /// The number of row `i - 1` again.
    Duplicate,
    /// A number already a lead, with a changed last name.
    ExistingChanged,
    /// A number already a lead, with the same data.
    ExistingSame,
    OnDoNotCallList,
    New,
}

fn kind(i: usize) -> Kind {
    match (i % 20, i % 100, i % 50) {
        (0, _, _) => Kind::InvalidPhone,
        (_, 3 | 36 | 69, _) => Kind::Duplicate,
        (_, 7, _) => Kind::ExistingChanged,
        (_, 57, _) => Kind::ExistingSame,
        (_, 11, _) => Kind::OnDoNotCallList,
        _ => Kind::New,
    }
}

/// Row `i`'s cells: phone, first name, last name, email, notes (an attribute).
fn cells(i: usize) -> [String; 5] {
    let phone = match kind(i) {
        Kind::InvalidPhone => {
            ["12345", "+1 (000) 000-0000", "call me", "555-01", "+999 1"][(i / 20) % 5].to_owned()
        }
        Kind::Duplicate => written(i - 1),
        _ => written(i),
    };
    let last = if kind(i) == Kind::ExistingChanged {
        format!("Müller-{i}")
    } else {
        format!("Smith-{i}")
    };
    [
        phone,
        format!("José {i}"),
        last,
        format!("lead{i}@example.com"),
        if i >= MULTILINE_FROM {
            format!("=HYPERLINK(\"http://x\";\"{i}\")\nsecond line")
        } else {
            format!("=HYPERLINK(\"http://x\";\"{i}\")")
        },
    ]
}

/// Rows from here on have a newline in their notes (each record spans two lines).
const MULTILINE_FROM: usize = 667;

/// A CSV of rows `range` with `delimiter`, optionally with a BOM and CRLF.
fn csv(range: std::ops::Range<usize>, delimiter: char, bom: bool, crlf: bool) -> Vec<u8> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let d = delimiter;
    let mut out = String::new();
    if bom {
        out.push('\u{feff}');
    }
    out.push_str(&format!(
        "Phone Number{d}First Name{d}last_name{d}E-mail{d}Notes{eol}"
    ));
    for i in range {
        let [phone, first, last, email, notes] = cells(i);
        let notes = format!("\"{}\"", notes.replace('"', "\"\""));
        out.push_str(&format!(
            "{phone}{d}{first}{d}{last}{d}{email}{d}{notes}{eol}"
        ));
    }
    out.into_bytes()
}

#[tokio::test]
async fn a_thousand_rows_in_three_files_import_with_exact_counters_and_row_errors() {
    // GIVEN 2 % of the numbers already leads (imported before), 1 % on the do-not-call list
    let w = world().await;
    let (stack, token, est) = (&w.stack, &w.operator, &w.est);
    let existing: Vec<usize> = (0..1000)
        .filter(|&i| matches!(kind(i), Kind::ExistingChanged | Kind::ExistingSame))
        .collect();
    let mut seed = String::from("phone,first_name,last_name,email,Notes\n");
    for &i in &existing {
        let [_, first, _, email, notes] = cells(i);
        let notes = format!("\"{}\"", notes.replace('"', "\"\""));
        seed.push_str(&format!("{},{first},Smith-{i},{email},{notes}\n", e164(i)));
    }
    let seeded = import(stack, token, est, seed.as_bytes()).await;
    work(stack).await;
    assert_eq!(job(stack, token, &seeded).await["created"], 20);
    let dnc: Vec<usize> = (0..1000)
        .filter(|&i| kind(i) == Kind::OnDoNotCallList)
        .collect();
    for &i in &dnc {
        stack
            .post(
                &format!("/establishments/{est}/do-not-call"),
                token,
                json!({ "e164": e164(i), "reason": "asked" }),
            )
            .await
            .expect(201);
    }

    // WHEN the thousand rows are imported as three files: comma and LF; semicolon, BOM and
    // CRLF; tab with a quoted newline in every record
    let files = [
        (0..334, csv(0..334, ',', false, false), 1usize),
        (334..667, csv(334..667, ';', true, true), 1),
        (667..1000, csv(667..1000, '\t', false, false), 2),
    ];
    let mut jobs = Vec::new();
    for (_, bytes, _) in &files {
        jobs.push(import(stack, token, est, bytes).await);
    }
    work(stack).await;

    // THEN each job's counters and row errors are exactly what its rows were
    for ((range, _, lines), id) in files.iter().zip(&jobs) {
        let count = |k: Kind| range.clone().filter(|&i| kind(i) == k).count();
        let answer = job(stack, token, id).await;
        assert_eq!(answer["status"], "completed", "{answer}");
        assert_eq!(answer["total_rows"], range.len());
        assert_eq!(answer["processed_rows"], range.len());
        assert_eq!(
            answer["created"],
            count(Kind::New) + count(Kind::OnDoNotCallList)
        );
        assert_eq!(answer["updated"], count(Kind::ExistingChanged));
        assert_eq!(answer["unchanged"], count(Kind::ExistingSame));
        assert_eq!(
            answer["rejected"],
            count(Kind::InvalidPhone) + count(Kind::Duplicate)
        );
        assert_eq!(answer["errors_url"], format!("/leads/import/{id}/errors"));
        let errors = all(stack, token, &format!("/leads/import/{id}/errors")).await;
        let got: Vec<(u64, String, String)> = errors
            .iter()
            .map(|e| {
                (
                    e["row"].as_u64().unwrap(),
                    e["code"].as_str().unwrap().to_owned(),
                    e["column"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(u64, String, String)> = range
            .clone()
            .filter_map(|i| {
                let row = (2 + (i - range.start) * lines) as u64;
                match kind(i) {
                    Kind::InvalidPhone => {
                        Some((row, "invalid_phone".into(), "Phone Number".into()))
                    }
                    Kind::Duplicate => {
                        Some((row, "duplicate_in_file".into(), "Phone Number".into()))
                    }
                    _ => None,
                }
            })
            .collect();
        assert_eq!(got, expected);
        let duplicate = errors
            .iter()
            .find(|e| e["code"] == "duplicate_in_file")
            .unwrap();
        assert!(
            duplicate["message"].as_str().unwrap().contains(&format!(
                "row {}",
                duplicate["row"].as_u64().unwrap() - *lines as u64
            )),
            "{duplicate}"
        );
    }

    // AND the leads are queryable by status: the numbers on the list show do_not_call
    let listed = all(
        stack,
        &w.viewer,
        &format!("/leads?establishment_id={est}&status=do_not_call"),
    )
    .await;
    let numbers: BTreeSet<String> = listed
        .iter()
        .map(|l| l["phone_e164"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(numbers, dnc.iter().map(|&i| e164(i)).collect());
    let new = all(
        stack,
        &w.viewer,
        &format!("/leads?establishment_id={est}&status=new"),
    )
    .await;
    let new_count = (0..1000)
        .filter(|&i| {
            matches!(
                kind(i),
                Kind::New | Kind::ExistingChanged | Kind::ExistingSame
            )
        })
        .count();
    assert_eq!(new.len(), new_count);
    let everyone = all(stack, &w.viewer, &format!("/leads?establishment_id={est}")).await;
    assert_eq!(everyone.len(), new_count + dnc.len());
    let created: Vec<&str> = everyone
        .iter()
        .map(|l| l["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // AND an updated lead took the file's columns; a formula cell is stored as its text
    let changed = existing
        .iter()
        .find(|&&i| kind(i) == Kind::ExistingChanged)
        .unwrap();
    let lead = everyone
        .iter()
        .find(|l| l["phone_e164"] == e164(*changed))
        .unwrap();
    assert_eq!(lead["last_name"], format!("Müller-{changed}"));
    assert_eq!(lead["first_name"], format!("José {changed}"));
    assert_eq!(lead["name"], format!("José {changed} Müller-{changed}"));
    assert_eq!(lead["email"], format!("lead{changed}@example.com"));
    assert_eq!(
        lead["attributes"]["Notes"],
        format!("=HYPERLINK(\"http://x\";\"{changed}\")")
    );
    assert_eq!(lead["timezones"], json!(["America/New_York"]));
}

#[tokio::test]
async fn a_worker_killed_mid_file_resumes_without_a_lead_twice_and_with_exact_counters() {
    // GIVEN an accepted import of 2,000 rows (5 % invalid, 3 % duplicates)
    let w = world().await;
    let (stack, token, est) = (&w.stack, &w.operator, &w.est);
    let range = 0..2000;
    let id = import(stack, token, est, &csv(range.clone(), ',', false, false)).await;
    let job_id = ImportJobId::parse(&id).unwrap();

    // WHEN a first run is killed once it has committed a few batches
    let app = stack.app.clone();
    let first = {
        let job_id = job_id.clone();
        tokio::spawn(async move { run(&app, &job_id).await })
    };
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let done = job(stack, token, &id).await["processed_rows"]
            .as_u64()
            .unwrap();
        if done >= 300 {
            break;
        }
        assert!(
            !first.is_finished(),
            "the run ended before it could be killed"
        );
    }
    first.abort();
    let _ = first.await;
    let midway = job(stack, token, &id).await;
    assert_eq!(midway["status"], "running");
    assert!(
        midway["processed_rows"].as_u64().unwrap() < 2000,
        "{midway}"
    );

    // AND the queue delivers the job again
    work(stack).await;

    // THEN it completed with counters that count every row once, and one lead per number
    let answer = job(stack, token, &id).await;
    let count = |k: Kind| range.clone().filter(|&i| kind(i) == k).count();
    let valid = 2000 - count(Kind::InvalidPhone) - count(Kind::Duplicate);
    assert_eq!(answer["status"], "completed", "{answer}");
    assert_eq!(answer["processed_rows"], 2000);
    assert_eq!(answer["created"], valid);
    assert_eq!(answer["updated"], 0);
    assert_eq!(answer["unchanged"], 0);
    assert_eq!(
        answer["rejected"],
        count(Kind::InvalidPhone) + count(Kind::Duplicate)
    );
    let errors = all(stack, token, &format!("/leads/import/{id}/errors")).await;
    assert_eq!(errors.len() as u64, answer["rejected"].as_u64().unwrap());
    let leads = all(stack, token, &format!("/leads?establishment_id={est}")).await;
    let numbers: BTreeSet<&str> = leads
        .iter()
        .map(|l| l["phone_e164"].as_str().unwrap())
        .collect();
    assert_eq!(leads.len(), valid);
    assert_eq!(numbers.len(), valid);
}

#[tokio::test]
async fn concurrent_imports_of_overlapping_files_converge_on_one_lead_per_number() {
    // GIVEN two files sharing 150 of their numbers
    let w = world().await;
    let (stack, token, est) = (&w.stack, &w.operator, &w.est);
    let file = |range: std::ops::Range<usize>| {
        let mut out = String::from("phone,name\n");
        for i in range {
            out.push_str(&format!("{},Person {i}\n", e164(i)));
        }
        out.into_bytes()
    };
    let a = import(stack, token, est, &file(1..301)).await;
    let b = import(stack, token, est, &file(151..451)).await;

    // WHEN both run at once
    let (ja, jb) = (
        ImportJobId::parse(&a).unwrap(),
        ImportJobId::parse(&b).unwrap(),
    );
    let (ra, rb) = tokio::join!(run(&stack.app, &ja), run(&stack.app, &jb));
    ra.unwrap();
    rb.unwrap();

    // THEN every number has one lead, and exactly one of the two imports created each
    let (ja, jb) = (job(stack, token, &a).await, job(stack, token, &b).await);
    let created = ja["created"].as_u64().unwrap() + jb["created"].as_u64().unwrap();
    let others = ["updated", "unchanged"]
        .iter()
        .map(|k| ja[k].as_u64().unwrap() + jb[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(created, 450);
    assert_eq!(others, 150);
    let leads = all(stack, token, &format!("/leads?establishment_id={est}")).await;
    assert_eq!(leads.len(), 450);
}

#[tokio::test]
async fn each_lead_carries_the_time_zones_it_can_be_in() {
    // GIVEN numbers with one zone, with several, one with a timezone column, and non-NANP
    let w = world().await;
    let (stack, token, est) = (&w.stack, &w.operator, &w.est);
    let csv = "phone,timezone\n\
               +12125550100,\n\
               +12085550100,\n\
               +12085550101,America/Chicago\n\
               +33142685300,\n\
               +442079460000,\n\
               +18005550100,\n\
               +12125550101,Mars/Olympus\n";

    // WHEN they are imported
    let id = import(stack, token, est, csv.as_bytes()).await;
    work(stack).await;

    // THEN each lead has its candidates, or the zone the file gave
    let zones = |e164: &'static str| async move {
        let leads = all(
            stack,
            token,
            &format!("/leads?establishment_id={est}&q=%2B{}", &e164[1..]),
        )
        .await;
        assert_eq!(leads.len(), 1, "{e164}");
        leads[0]["timezones"].clone()
    };
    assert_eq!(zones("+12125550100").await, json!(["America/New_York"]));
    let idaho = zones("+12085550100").await;
    let idaho: BTreeSet<&str> = idaho
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z.as_str().unwrap())
        .collect();
    assert_eq!(
        idaho,
        BTreeSet::from(["America/Boise", "America/Los_Angeles"])
    );
    assert_eq!(zones("+12085550101").await, json!(["America/Chicago"]));
    assert_eq!(zones("+33142685300").await, json!(["Europe/Paris"]));
    assert_eq!(zones("+442079460000").await, json!(["Europe/London"]));
    assert!(
        zones("+18005550100").await.as_array().unwrap().len() > 5,
        "toll-free: every NANP zone"
    );
    let errors = all(stack, token, &format!("/leads/import/{id}/errors")).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], "invalid_timezone");
    assert_eq!(errors[0]["row"], 8);
    assert_eq!(errors[0]["value"], "Mars/Olympus");
}

#[tokio::test]
async fn the_leads_api_searches_edits_and_deletes_with_roles_and_the_do_not_call_list() {
    // GIVEN three leads
    let w = world().await;
    let stack = &w.stack;
    let est = &w.est;
    let csv = "phone,first_name,last_name,company\n\
               +12015550001,Ada,Lovelace,Analytical\n\
               +12015550002,Alan,Turing,Bletchley\n\
               +33142685300,Grace,Hopper,Navy\n";
    import(stack, &w.operator, est, csv.as_bytes()).await;
    work(stack).await;
    let listed = all(stack, &w.viewer, &format!("/leads?establishment_id={est}")).await;
    assert_eq!(listed.len(), 3);
    let ada = listed
        .iter()
        .find(|l| l["first_name"] == "Ada")
        .unwrap()
        .clone();
    let ada_id = ada["id"].as_str().unwrap();

    // WHEN they are searched by number and by name prefix
    let q = |q: &str| format!("/leads?establishment_id={est}&q={q}");
    let by_phone = all(stack, &w.viewer, &q("%2B120155")).await;
    let national = all(stack, &w.viewer, &q("(201)%20555-0001")).await;
    let by_name = all(stack, &w.viewer, &q("al")).await;
    let french = all(stack, &w.viewer, &q("%2B33")).await;
    // THEN prefixes match numbers (national digits read in the establishment's region) and names
    assert_eq!(by_phone.len(), 2);
    assert_eq!(national.len(), 1);
    assert_eq!(national[0]["id"], ada["id"]);
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0]["first_name"], "Alan");
    assert_eq!(french[0]["first_name"], "Grace");

    // WHEN an operator edits Ada: a field, an attribute set and one removed, a zone
    let path = format!("/leads/{ada_id}");
    let edited = stack
        .patch(
            &path,
            &w.operator,
            json!({ "email": "ada@example.com", "attributes": { "company": null, "tier": "gold" },
                    "timezone": "America/Chicago", "status": "qualified" }),
        )
        .await;
    let edited = edited.expect(200);
    // THEN the answer and a read show it
    assert_eq!(edited["email"], "ada@example.com");
    assert_eq!(edited["attributes"], json!({ "tier": "gold" }));
    assert_eq!(edited["timezones"], json!(["America/Chicago"]));
    assert_eq!(edited["status"], "qualified");
    let read = stack.get(&path, &w.viewer).await;
    assert_eq!(read.expect(200)["status"], "qualified");
    let back = stack
        .patch(&path, &w.operator, json!({ "timezone": null }))
        .await;
    assert_eq!(back.expect(200)["timezones"], json!(["America/New_York"]));
    let qualified = all(
        stack,
        &w.viewer,
        &format!("/leads?establishment_id={est}&status=qualified"),
    )
    .await;
    assert_eq!(qualified.len(), 1);

    // WHEN a viewer edits, an operator deletes
    stack
        .patch(&path, &w.viewer, json!({ "name": "x" }))
        .await
        .expect_error(403, "forbidden");
    let req = |token: &str| {
        Request::builder()
            .method(Method::DELETE)
            .uri(path.clone())
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    stack
        .send_raw(req(&w.operator))
        .await
        .expect_error(403, "forbidden");

    // WHEN Ada is set to do_not_call
    let dnc = stack
        .patch(&path, &w.operator, json!({ "status": "do_not_call" }))
        .await;
    assert_eq!(dnc.expect(200)["status"], "do_not_call");
    // THEN her number is on the list, audited, and she cannot leave the status while it is
    let list = stack
        .get(
            &format!("/establishments/{est}/do-not-call?limit=100"),
            &w.viewer,
        )
        .await;
    assert!(
        list.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["e164"] == "+12015550001")
    );
    assert!(
        stack
            .audit_actions(&w.admin, est)
            .await
            .contains(&"do_not_call.added".to_owned())
    );
    stack
        .patch(&path, &w.operator, json!({ "status": "new" }))
        .await
        .expect_error(422, "do_not_call");

    // WHEN Alan's number is added to the list directly
    stack
        .post(
            &format!("/establishments/{est}/do-not-call"),
            &w.operator,
            json!({ "e164": "+12015550002" }),
        )
        .await
        .expect(201);
    // THEN his lead shows do_not_call
    let alan = all(stack, &w.viewer, &q("%2B12015550002")).await;
    assert_eq!(alan[0]["status"], "do_not_call");

    // WHEN the admin deletes Ada
    let deleted = stack.send_raw(req(&w.admin)).await;
    assert_eq!(deleted.status, 204);
    // THEN she is gone, and the deletion is audited
    stack
        .get(&path, &w.viewer)
        .await
        .expect_error(404, "not_found");
    assert!(
        stack
            .audit_actions(&w.admin, est)
            .await
            .contains(&"lead.deleted".to_owned())
    );
}

#[tokio::test]
async fn another_establishment_sees_no_lead_job_or_upload_and_viewers_cannot_import() {
    // GIVEN a lead and an import of one establishment, and another establishment's admin
    let w = world().await;
    let stack = &w.stack;
    let id = import(stack, &w.operator, &w.est, b"phone\n+12015550001\n").await;
    work(stack).await;
    let lead = all(
        stack,
        &w.viewer,
        &format!("/leads?establishment_id={}", w.est),
    )
    .await;
    let lead_id = lead[0]["id"].as_str().unwrap();
    let other = stack.establishment(&w.admin, "Other").await;
    let stranger = stack
        .member(&w.admin, &other, "stranger@leads.test", "admin")
        .await;

    // WHEN the stranger reaches for them THEN each is 404
    stack
        .get(&format!("/leads/{lead_id}"), &stranger)
        .await
        .expect_error(404, "not_found");
    stack
        .patch(
            &format!("/leads/{lead_id}"),
            &stranger,
            json!({ "name": "x" }),
        )
        .await
        .expect_error(404, "not_found");
    stack
        .get(&format!("/leads/import/{id}"), &stranger)
        .await
        .expect_error(404, "not_found");
    stack
        .get(&format!("/leads/import/{id}/errors"), &stranger)
        .await
        .expect_error(404, "not_found");
    stack
        .get(&format!("/leads?establishment_id={}", w.est), &stranger)
        .await
        .expect_error(404, "not_found");
    let url = stack
        .post(
            "/leads/import/upload-url",
            &w.operator,
            json!({ "establishment_id": w.est, "filename": "mine.csv" }),
        )
        .await;
    let key = url.expect(200)["s3_key"].as_str().unwrap().to_owned();
    callplane_tests::http_put(
        url.body["upload_url"].as_str().unwrap(),
        b"phone\n+12015550009\n",
    )
    .await;
    stack
        .post(
            "/leads/import",
            &stranger,
            json!({ "establishment_id": other, "s3_key": key }),
        )
        .await
        .expect_error(404, "not_found");
    // AND a viewer of the establishment may not import
    let body = multipart(&[("establishment_id", &w.est)], Some(("a.csv", b"phone\n")));
    post_multipart(stack, &w.viewer, body)
        .await
        .expect_error(403, "forbidden");
}

#[tokio::test]
async fn a_large_file_goes_through_a_presigned_upload_and_oversized_files_are_refused() {
    // GIVEN an upload URL
    let w = world().await;
    let stack = &w.stack;
    let url = stack
        .post(
            "/leads/import/upload-url",
            &w.operator,
            json!({ "establishment_id": w.est, "filename": "../../big leads.csv" }),
        )
        .await;
    let url = url.expect(200).clone();
    let key = url["s3_key"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("uploads/{}/leads/", w.est)),
        "{key}"
    );
    assert!(key.ends_with("/big_leads.csv"), "{key}");
    assert_eq!(url["max_bytes"], 50 * 1024 * 1024);

    // WHEN the browser PUTs 3,000 rows to it and the import is started by its key
    let status = callplane_tests::http_put(
        url["upload_url"].as_str().unwrap(),
        &csv(0..3000, ',', false, false),
    )
    .await;
    assert_eq!(status, 200);
    let accepted = stack
        .post(
            "/leads/import",
            &w.operator,
            json!({ "establishment_id": w.est, "s3_key": key }),
        )
        .await;
    let id = accepted.expect(202)["job_id"].as_str().unwrap().to_owned();
    work(stack).await;
    // THEN it imports
    let answer = job(stack, &w.operator, &id).await;
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["processed_rows"], 3000);
    assert_eq!(answer["filename"], "big_leads.csv");

    // WHEN a 60 MB object is under the upload prefix, or the key is not an upload
    let big = format!("uploads/{}/leads/01J000000000000000000000/big.csv", w.est);
    stack
        .app
        .blobs
        .put(&big, vec![b'1'; 60 * 1024 * 1024], "text/csv")
        .await
        .unwrap();
    let too_big = stack
        .post(
            "/leads/import",
            &w.operator,
            json!({ "establishment_id": w.est, "s3_key": big }),
        )
        .await;
    // THEN 413 and 404, and no job
    too_big.expect_error(413, "payload_too_large");
    for key in [
        format!("recordings/{}/CA1.wav", w.est),
        format!("uploads/{}/leads/../../x.csv", w.est),
        format!("uploads/{}/leads/missing.csv", w.est),
    ] {
        stack
            .post(
                "/leads/import",
                &w.operator,
                json!({ "establishment_id": w.est, "s3_key": key }),
            )
            .await
            .expect_error(404, "not_found");
    }
    // AND an inline body over 4 MiB is 413
    let body = multipart(
        &[("establishment_id", &w.est)],
        Some(("big.csv", &vec![b'1'; 4 * 1024 * 1024 + 1])),
    );
    post_multipart(stack, &w.operator, body)
        .await
        .expect_error(413, "payload_too_large");
}

#[tokio::test]
async fn files_that_are_not_lead_csvs_fail_with_one_clear_error_and_create_nothing() {
    // GIVEN files that cannot be imported
    let w = world().await;
    let stack = &w.stack;
    let wide_header: Vec<String> = (0..201).map(|i| format!("c{i}")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "not_csv",
            vec![0x89, b'P', b'N', b'G', 0, 0, 0, 13, 1, 2, 3],
        ),
        ("empty_file", Vec::new()),
        (
            "no_phone_column",
            b"name,email\nAda,ada@example.com\n".to_vec(),
        ),
        (
            "too_many_columns",
            format!("phone,{}\n+12015550001\n", wide_header.join(",")).into_bytes(),
        ),
        ("not_csv", b"phone\n\xff\xfe+12015550001\n".to_vec()),
    ];
    for (code, bytes) in cases {
        // WHEN each is imported
        let id = import(stack, &w.operator, &w.est, &bytes).await;
        work(stack).await;
        // THEN the job failed saying why, with nothing created
        let answer = job(stack, &w.operator, &id).await;
        assert_eq!(answer["status"], "failed", "{code}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["created"], 0);
        assert!(answer["completed_at"].is_string());
    }
    let leads = all(
        stack,
        &w.viewer,
        &format!("/leads?establishment_id={}", w.est),
    )
    .await;
    assert!(leads.is_empty());
}

#[tokio::test]
async fn bad_rows_are_rejected_one_by_one_and_bad_requests_are_4xx() {
    // GIVEN rows too wide, with a field over 4 KiB, a bad email, no phone, a national number
    // read in a region given with the upload
    let w = world().await;
    let stack = &w.stack;
    let wide: Vec<&str> = vec!["x"; 201];
    let csv = format!(
        "phone,email,notes\n\
         {},a@b.co,{}\n\
         +12015550001,a@b.co,{}\n\
         +12015550002,not-an-email,x\n\
         ,a@b.co,x\n\
         01 42 68 53 01,a@b.co,=cmd|' /C calc'!A0\n",
        wide.join(","),
        "",
        "y".repeat(4097),
    );
    let body = multipart(
        &[("establishment_id", &w.est), ("default_region", "FR")],
        Some(("rows.csv", csv.as_bytes())),
    );
    let accepted = post_multipart(stack, &w.operator, body).await;
    let id = accepted.expect(202)["job_id"].as_str().unwrap().to_owned();
    // WHEN it is imported
    work(stack).await;
    // THEN each bad row is rejected with its code; the good row is a French lead, its formula
    // cell kept as text
    let errors = all(stack, &w.operator, &format!("/leads/import/{id}/errors")).await;
    let codes: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (2, "too_many_columns"),
            (3, "field_too_long"),
            (4, "invalid_email"),
            (5, "missing_phone")
        ]
    );
    let leads = all(
        stack,
        &w.viewer,
        &format!("/leads?establishment_id={}", w.est),
    )
    .await;
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["phone_e164"], "+33142685301");
    assert_eq!(leads[0]["attributes"]["notes"], "=cmd|' /C calc'!A0");

    // AND bad requests are 400 naming the field, and change nothing
    let est = &w.est;
    for (path, field) in [
        (
            format!("/leads?establishment_id={est}&status=hot"),
            "status",
        ),
        (format!("/leads?establishment_id={est}&limit=0"), "limit"),
        (
            "/leads?establishment_id=nope".to_owned(),
            "establishment_id",
        ),
    ] {
        let reply = stack.get(&path, &w.viewer).await;
        let message = reply.expect_error(400, "validation_failed");
        assert!(message.contains(field), "{path}: {message}");
    }
    // (ids of the wrong shape in a path are no such resource, as everywhere in the API)
    for path in ["/leads/lead_nope", "/leads/import/imp_nope"] {
        stack
            .get(path, &w.viewer)
            .await
            .expect_error(404, "not_found");
    }
    let lead = leads[0]["id"].as_str().unwrap();
    for (body, field) in [
        (json!({ "email": "nope" }), "email"),
        (
            json!({ "status": "do_not_call", "first_name": "v".repeat(4097) }),
            "first_name",
        ),
        (json!({ "timezone": "Mars/Base" }), "timezone"),
        (json!({ "status": "hot" }), "status"),
        (
            json!({ "attributes": { "k": "v".repeat(4097) } }),
            "attributes.k",
        ),
        (json!({ "phone_e164": "+12015550003" }), "phone_e164"),
    ] {
        let reply = stack
            .patch(&format!("/leads/{lead}"), &w.operator, body)
            .await;
        let message = reply.expect_error(400, "validation_failed");
        assert!(message.contains(field), "{message}");
    }
    for (fields, field) in [
        (
            vec![("establishment_id", est.as_str()), ("default_region", "ZZ")],
            "default_region",
        ),
        (vec![("default_region", "US")], "establishment_id"),
        (
            vec![("establishment_id", est.as_str()), ("color", "red")],
            "color",
        ),
    ] {
        let body = multipart(&fields, Some(("a.csv", b"phone\n")));
        let message = post_multipart(stack, &w.operator, body)
            .await
            .expect_error(400, "validation_failed");
        assert!(message.contains(field), "{message}");
    }
    let no_file = multipart(&[("establishment_id", est.as_str())], None);
    let message = post_multipart(stack, &w.operator, no_file)
        .await
        .expect_error(400, "validation_failed");
    assert!(message.contains("file"), "{message}");
    let unchanged = stack.get(&format!("/leads/{lead}"), &w.viewer).await;
    assert_eq!(unchanged.expect(200)["email"], "a@b.co");
    assert_eq!(unchanged.body["status"], "new");
    let list = stack
        .get(&format!("/establishments/{est}/do-not-call"), &w.viewer)
        .await;
    assert_eq!(
        list.expect(200)["items"],
        json!([]),
        "a refused PATCH added nothing"
    );
}
