//! `smm keygen`: a new signing key file.

use super::*;

pub(super) fn keygen(a: KeygenArgs, json: bool) -> Outcome {
    let secret = entropy()?;
    let signer = LocalSigner::from_secret_bytes("local", &secret)?;
    let pem = signer.to_pkcs8_pem()?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::io("create", dir, &e))?;
    }
    write_new(&a.out, pem.as_bytes(), 0o600)?;
    let key_id = audit::key_fingerprint_id(signer.public_key());
    if json {
        print_json(&json!({
            "keyId": key_id,
            "publicKeyPem": signer.public_key_pem(),
            "written": a.out.display().to_string(),
        }));
    } else {
        print!("{}", signer.public_key_pem());
        eprintln!("wrote {} (mode 0600); key id {key_id}", a.out.display());
    }
    ok()
}
