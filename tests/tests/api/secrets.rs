//! Envelope encryption of secrets at rest (issue 16, item 3; groundwork): values sealed under a
//! KMS data key with AES-256-GCM, bound to what they belong to, against KMS in the emulator.

use callplane::secrets::{Context, Envelope};
use callplane_tests::Stack;

async fn key(stack: &Stack) -> (aws_sdk_kms::Client, String) {
    let kms = aws_sdk_kms::Client::new(&stack.sdk);
    let made = kms
        .create_key()
        .description("callplane test secrets")
        .send()
        .await
        .expect("a KMS key in the emulator");
    let id = made.key_metadata().unwrap().key_id().to_owned();
    (kms, id)
}

#[tokio::test]
async fn a_sealed_token_opens_only_for_its_own_record_and_data_keys_are_reused() {
    // GIVEN the platform's KMS key and a token of integration A of an establishment
    let stack = Stack::new().await;
    let (kms, key_id) = key(&stack).await;
    let envelope = Envelope::new(kms.clone(), &key_id);
    let token = b"hubspot-pat-na1-0123456789abcdef";
    let a = Context::new("est_1", "integration", "int_A");
    let b = Context::new("est_1", "integration", "int_B");

    // WHEN it is sealed THEN what would be stored holds no clear token
    let sealed = envelope.seal(&a, token).await.unwrap();
    let stored = serde_json::to_string(&sealed).unwrap();
    assert!(!stored.contains("hubspot-pat"), "{stored}");
    assert_eq!(envelope.kms_calls(), 1, "one GenerateDataKey");
    // AND sealing more for the same record makes no KMS call, and never repeats a nonce
    let again = envelope.seal(&a, token).await.unwrap();
    assert_eq!(envelope.kms_calls(), 1);
    assert_eq!(again.key, sealed.key);
    assert_ne!(again.nonce, sealed.nonce);
    assert_ne!(again.data, sealed.data);

    // WHEN another instance opens it for its own record THEN the token comes back, with one
    // KMS Decrypt, and none for the next
    let other = Envelope::new(kms.clone(), &key_id);
    assert_eq!(other.open(&a, &sealed).await.unwrap(), token);
    assert_eq!(other.open(&a, &again).await.unwrap(), token);
    assert_eq!(other.kms_calls(), 1);

    // WHEN the sealed value is copied to integration B, or altered THEN it does not open
    assert!(other.open(&b, &sealed).await.is_err(), "the tag refuses");
    let fresh = Envelope::new(kms, &key_id);
    assert!(
        fresh.open(&b, &sealed).await.is_err(),
        "KMS or the tag refuses"
    );
    let mut altered = sealed.clone();
    let mut data = altered.data.into_bytes();
    data[0] = if data[0] == b'A' { b'B' } else { b'A' };
    altered.data = String::from_utf8(data).unwrap();
    assert!(other.open(&a, &altered).await.is_err());
}
