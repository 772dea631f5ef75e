//! The guard deletes what it created, also when the test using it panics.

use xgate_testbed::{Testbed, run, skip_reason};

fn namespaces() -> String {
    String::from_utf8_lossy(&run("ip", &["netns", "list"]).stdout).into_owned()
}

#[test]
fn namespaces_are_deleted_even_after_a_panic() {
    if let Some(r) = skip_reason() {
        eprintln!("skipped: {r}");
        return;
    }
    let names = std::thread::spawn(|| {
        let mut tb = Testbed::new();
        let a = tb.netns("a");
        let b = tb.netns("b");
        tb.veth(&a, "x0", &b, "x1", 2);
        assert!(namespaces().contains(&a));
        // Hand the names out through the panic payload.
        std::panic::panic_any((a, b));
    })
    .join()
    .unwrap_err();
    let (a, b) = names.downcast_ref::<(String, String)>().unwrap().clone();
    let list = namespaces();
    assert!(!list.contains(&a) && !list.contains(&b), "{list}");
}
