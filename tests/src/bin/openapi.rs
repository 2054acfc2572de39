//! `make openapi`: writes the API description the code declares to docs/openapi.json (the
//! file the auth function serves and the frontend builds against). `--check` only says
//! whether the committed file is current.

fn main() -> anyhow::Result<()> {
    let generated = callplane_tests::openapi_document();
    let path = callplane_tests::openapi_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::args().any(|a| a == "--check") {
        anyhow::ensure!(
            committed == generated,
            "{} is stale: run `make openapi`",
            path.display()
        );
        return Ok(());
    }
    if committed != generated {
        std::fs::write(&path, &generated)?;
    }
    let doc: serde_json::Value = serde_json::from_str(&generated)?;
    let operations: usize = doc["paths"].as_object().map_or(0, |paths| {
        paths
            .values()
            .map(|item| item.as_object().map_or(0, |o| o.len()))
            .sum()
    });
    println!(
        "{}: {} paths, {} operations, {} schemas, {} bytes",
        path.display(),
        doc["paths"].as_object().map_or(0, |p| p.len()),
        operations,
        doc["components"]["schemas"]
            .as_object()
            .map_or(0, |s| s.len()),
        generated.len()
    );
    Ok(())
}
