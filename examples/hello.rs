//! Spawn, sleep, join: the smallest shrapnel program.
use std::time::Duration;

fn main() {
    let worker = shrapnel::Builder::new()
        .name("worker")
        .spawn(|| {
            for i in 1..=3 {
                println!("worker: tick {i}");
                shrapnel::sleep(Duration::from_millis(100))?;
            }
            Ok::<_, shrapnel::Interrupted>(42)
        })
        .expect("spawn");
    shrapnel::spawn(move || match worker.join() {
        Ok(Ok(v)) => println!("main: worker returned {v}"),
        other => println!("main: worker failed: {other:?}"),
    });
    std::process::exit(shrapnel::event_loop());
}
