//! The shared SharePoint budget against the NATS server the machines run (127.0.0.1:4222,
//! `CAIRN_TEST_NATS_URL` elsewhere): two holders of one tenant's budget, taking units as
//! fast as they are given, never spend more than the budget in any window together.

use cairn_dist::budget::KvBudget;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn server() -> String {
    std::env::var("CAIRN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_one_budget_in_every_window() {
    let client = async_nats::connect(server())
        .await
        .expect("a NATS server with JetStream at 127.0.0.1:4222 (or CAIRN_TEST_NATS_URL)");
    let js = async_nats::jetstream::new(client);
    let bucket = format!("test-budget-{:08x}", rand::random::<u32>());
    let window = Duration::from_secs(2);
    let per_window = 20u32;
    let a = Arc::new(
        KvBudget::open(&js, &bucket, "tenant-a", per_window, window)
            .await
            .unwrap(),
    );
    let b = Arc::new(
        KvBudget::open(&js, &bucket, "tenant-a", per_window, window)
            .await
            .unwrap(),
    );
    // Another tenant's budget is its own.
    let other = KvBudget::open(&js, &bucket, "tenant-b", per_window, window)
        .await
        .unwrap();
    let start = Instant::now();
    let spent: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut takers = Vec::new();
    for budget in [a, b] {
        let spent = spent.clone();
        takers.push(tokio::spawn(async move {
            for _ in 0..30 {
                budget.take_units(1).await;
                spent.lock().unwrap().push(start.elapsed());
            }
        }));
    }
    for t in takers {
        t.await.unwrap();
    }
    let t = Instant::now();
    for _ in 0..per_window {
        other.take_units(1).await;
    }
    assert!(
        t.elapsed() < window,
        "tenant b waited on tenant a's budget: {:?}",
        t.elapsed()
    );
    let mut spent = spent.lock().unwrap().clone();
    spent.sort();
    assert_eq!(spent.len(), 60);
    // Every window (starting at each spend) holds at most the budget.
    let mut worst = 0;
    for (i, s) in spent.iter().enumerate() {
        let n = spent[i..].iter().take_while(|x| **x < *s + window).count();
        worst = worst.max(n);
    }
    assert!(
        worst <= per_window as usize,
        "{worst} units within one window of {window:?}, budget {per_window}: {spent:?}"
    );
    // And the budget was used, not starved: 60 units need at least two more windows.
    assert!(
        spent[59] >= window * 2,
        "60 units of a 20-per-window budget were spent in {:?}",
        spent[59]
    );
    let _ = js.delete_key_value(&bucket).await;
}
