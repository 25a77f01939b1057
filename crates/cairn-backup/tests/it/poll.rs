//! An incremental run's polls go in `$batch`es: with nothing changed it sends a few
//! requests instead of one per collection and records the same restore point; a change in
//! one folder, answered inside a batch, is picked up as it would be without batching.

use crate::{backup_engine, endpoint, manifest, report_ok, restore_point, spec, users};
use cairn_catalog::Catalog;
use cairn_testkit::{SimTenant, Workspace};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_are_batched_and_changes_inside_a_batch_are_picked_up() {
    let sim = SimTenant::start(spec(23, 2)).await;
    let setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let user = users(&engine).await[0].clone();
    report_ok(&engine.run(vec![user.clone()]).await);
    let want1 = manifest(&sim, &user.id).await;
    assert_eq!(restore_point(&setup, &user.name, 1), want1);
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let collections = setup.catalog.scopes(res).unwrap().len() as u64;
    assert!(collections > 10, "{collections} collections");

    // Nothing changed: the polls travel in a few batches.
    let before = sim.stats().await;
    let second = engine.run(vec![user.clone()]).await;
    report_ok(&second);
    let after = sim.stats().await;
    let batches = endpoint(&after, "POST /$batch") - endpoint(&before, "POST /$batch");
    assert!(batches > 0, "the polls went in batches");
    assert!(
        second.requests < collections,
        "{} requests for {collections} collections",
        second.requests
    );
    let r2 = &second.resources[0];
    assert_eq!((r2.added, r2.changed, r2.removed, r2.fetched), (0, 0, 0, 0));
    assert!(r2.skipped.is_empty(), "{:?}", r2.skipped);
    assert_eq!(restore_point(&setup, &user.name, 2), want1);

    // A message arrives in the inbox: its folder's batched answer carries it.
    let inbox = sim
        .graph()
        .get(&format!("/users/{}/mailFolders/inbox?$select=id", user.id))
        .await
        .unwrap();
    let inbox = inbox["id"].as_str().unwrap().to_string();
    sim.graph()
        .send_json(
            http::Method::POST,
            &format!("/users/{}/mailFolders/{inbox}/messages", user.id),
            json!({"subject": "Arrived between runs", "body": {"contentType": "text", "content": "hello"}}),
        )
        .await
        .unwrap();
    let before = sim.stats().await;
    let third = engine.run(vec![user.clone()]).await;
    report_ok(&third);
    let after = sim.stats().await;
    let r3 = &third.resources[0];
    assert_eq!((r3.added, r3.changed, r3.removed), (1, 0, 0));
    assert_eq!(
        endpoint(&after, "GET /users/{id}/messages/{id}/$value")
            - endpoint(&before, "GET /users/{id}/messages/{id}/$value"),
        1,
        "only the new message is fetched"
    );
    let want3 = manifest(&sim, &user.id).await;
    assert_ne!(want3, want1);
    assert_eq!(restore_point(&setup, &user.name, 3), want3);
    // The runs before are untouched.
    assert_eq!(restore_point(&setup, &user.name, 2), want1);
}
