//! Development certificates: `crossgate certs` writes a self-signed certificate and key (PEM) for serving
//! HTTPS locally. Nothing secret is committed; each run makes a new key.

use std::path::{Path, PathBuf};

/// Writes `dev.pem` and `dev-key.pem` into `dir` for the given names; returns their paths.
pub fn write(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), String> {
    let cert =
        rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| format!("cannot make a certificate: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cert_path = dir.join("dev.pem");
    let key_path = dir.join("dev-key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    write_private(&key_path, cert.signing_key.serialize_pem().as_bytes())?;
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
