//! Compiles the vendored settings protobufs (`proto/`) into Rust with protox + prost-build, so
//! building needs no `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/discord_protos/discord_users/v1/PreloadedUserSettings.proto",
        "proto/discord_protos/discord_users/v1/FrecencyUserSettings.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
