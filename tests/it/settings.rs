use ringside::settings::Settings;

#[test]
fn the_shipped_config_file_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringside.toml");
    let settings = Settings::load(&path, true).expect("shipped config loads");
    assert_eq!(settings.http.listen, "127.0.0.1:8080");
    assert_eq!(settings.numbers.default_country, "CN");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let mut s = Settings::default();
    s.database.url = "postgres://ringside:hunter2@db/ringside".into();
    s.ami.servers.push(toml_server(
        "host = \"pbx\"\nusername = \"ringside\"\nsecret = \"s3cret\"\n",
    ));
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
}

fn toml_server(body: &str) -> ringside::settings::AmiServer {
    let c = config::Config::builder()
        .add_source(config::File::from_str(body, config::FileFormat::Toml))
        .build()
        .unwrap();
    c.try_deserialize().unwrap()
}
