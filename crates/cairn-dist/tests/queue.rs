//! The queue against the NATS server the machines run: a run's tasks reach a worker, the
//! results come back in the run's report, a task whose worker stops heartbeating goes to
//! another one.

use cairn_backup::ResourceReport;
use cairn_dist::{Queue, Task, TaskResult, Update};
use std::time::Duration;

fn url(queue: &str) -> String {
    let server =
        std::env::var("CAIRN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    format!("{server}?queue={queue}&ack-wait=2")
}

fn task(run: &str, index: u32) -> Task {
    Task {
        run: run.into(),
        index,
        tenant: "contoso".into(),
        kind: "user".into(),
        id: format!("id-{index}"),
        name: format!("user{index}@contoso.example"),
        services: vec!["mail".into()],
        file_versions: false,
        full_fidelity: false,
    }
}

fn result(t: &Task, worker: &str, delivered: i64) -> TaskResult {
    TaskResult {
        run: t.run.clone(),
        index: t.index,
        worker: worker.into(),
        delivered,
        requests_before: 0,
        requests_after: 10,
        throttled_before: 0,
        throttled_after: 0,
        report: ResourceReport {
            resource: t.name.clone(),
            kind: t.kind.clone(),
            items: 7,
            ..ResourceReport::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_go_to_workers_and_an_abandoned_one_is_delivered_again() {
    let queue = format!("test-queue-{:08x}", rand::random::<u32>());
    let dispatcher = Queue::connect(&url(&queue))
        .await
        .expect("a NATS server with JetStream");
    let run = cairn_dist::run_id();
    let tasks: Vec<Task> = (0..3).map(|i| task(&run, i)).collect();
    let worker_url = url(&queue);
    let worker = tokio::spawn(async move {
        let q = Queue::connect(&worker_url).await.unwrap();
        let tasks = q.tasks().await.unwrap();
        let mut abandoned = false;
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let Some(d) = tasks.next(Duration::from_secs(1)).await.unwrap() else {
                continue;
            };
            seen.push((d.task.index, d.delivered));
            if d.task.index == 1 && !abandoned {
                // Taken, then dropped without an ack or a heartbeat: as a killed worker.
                abandoned = true;
                drop(d);
                continue;
            }
            let _beat = d.heartbeat();
            let r = result(&d.task, "w1", d.delivered);
            d.finish(&q, &r).await.unwrap();
        }
        seen
    });
    let mut finished = Vec::new();
    let results = tokio::time::timeout(
        Duration::from_secs(30),
        dispatcher.run(&tasks, &mut |u| {
            if let Update::Finished(r) = u {
                finished.push(r.index);
            }
        }),
    )
    .await
    .expect("every result within 30 s")
    .unwrap();
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r.report.items == 7 && r.worker == "w1")
    );
    let again = results.iter().find(|r| r.index == 1).unwrap();
    assert_eq!(again.delivered, 2, "the abandoned task came back once");
    finished.sort();
    assert_eq!(finished, vec![0, 1, 2]);
    let seen = worker.await.unwrap();
    assert_eq!(seen.iter().filter(|(i, _)| *i == 1).count(), 2, "{seen:?}");
}
