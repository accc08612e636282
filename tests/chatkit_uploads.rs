//! Two-phase attachment uploads over real TCP: `attachments.create` on `/chatkit`, then the
//! bytes to the descriptor's URL on the example server, scoped to the user, under a size limit.

mod common;

use bytes::Bytes;
use chatkit_tower::auth::{AuthLayer, StaticTokens};
use chatkit_tower::chatkit::{
    AttachmentStore, AttachmentUploadService, InMemoryAttachmentStore, InMemoryStore,
    RequestContext, Store,
};
use chatkit_tower::protocol::AttachmentCreateParams;
use common::{chatkit_call, send, serve_app, within, Answer, TestServer};
use http::Request;
use http_body_util::Full;
use serde_json::{json, Value};

const ALICE: &str = "Bearer alice-token";
const BOB: &str = "Bearer bob-token";

async fn app() -> TestServer {
    within(serve_app(&[
        ("CHATKIT_USER_TOKENS", "alice-token=alice,bob-token=bob"),
        ("CHATKIT_DEMO_PACE_MS", "0"),
    ]))
    .await
}

/// `attachments.create` as `who`: the attachment JSON, with its upload descriptor.
async fn create(server: &TestServer, who: &str, name: &str, mime_type: &str) -> Value {
    let res = chatkit_call(
        server,
        who,
        json!({"type": "attachments.create", "params": {"name": name, "size": 5, "mime_type": mime_type}}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

async fn upload(
    method: &str,
    url: &str,
    who: Option<&str>,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", content_type);
    if let Some(who) = who {
        req = req.header("authorization", who);
    }
    send(req.body(Full::new(body.into())).unwrap()).await
}

#[tokio::test]
async fn two_phase_upload_to_the_descriptor_url() {
    let server = app().await;
    let created = create(&server, ALICE, "notes.txt", "text/plain").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let descriptor = &created["upload_descriptor"];
    assert_eq!(descriptor["method"], "PUT", "{created}");
    let url = descriptor["url"].as_str().unwrap();
    assert_eq!(url, server.url(&format!("/chatkit/uploads/{id}")));

    let res = upload("PUT", url, Some(ALICE), "text/plain", "hello").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.headers["content-type"], "application/json");
    let uploaded = res.json();
    assert_eq!(uploaded["id"], id);
    assert_eq!(uploaded["type"], "file");
    assert_eq!(uploaded["name"], "notes.txt");
    assert_eq!(uploaded["mime_type"], "text/plain");
    assert!(
        uploaded.get("upload_descriptor").is_none() || uploaded["upload_descriptor"].is_null(),
        "{uploaded}"
    );

    // POST works too (the descriptor's other method), and replaces the bytes.
    let res = upload(
        "POST",
        url,
        Some(ALICE),
        "application/octet-stream",
        "again",
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());

    // The record is saved without its descriptor: a message can now carry it, and deleting it
    // works as before.
    let res = chatkit_call(
        &server,
        ALICE,
        json!({"type": "attachments.delete", "params": {"attachment_id": id}}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    upload("PUT", url, Some(ALICE), "text/plain", "gone")
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn an_image_upload_answers_with_its_preview_url() {
    let server = app().await;
    let created = create(&server, ALICE, "a.png", "image/png").await;
    let url = created["upload_descriptor"]["url"].as_str().unwrap();
    let res = upload("PUT", url, Some(ALICE), "image/png", &b"\x89PNG\r"[..]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let uploaded = res.json();
    assert_eq!(uploaded["type"], "image");
    assert_eq!(uploaded["preview_url"], url);
    assert!(uploaded["upload_descriptor"].is_null(), "{uploaded}");
}

#[tokio::test]
async fn another_users_or_an_unknown_attachment_is_404() {
    let server = app().await;
    let created = create(&server, ALICE, "secret.txt", "text/plain").await;
    let url = created["upload_descriptor"]["url"].as_str().unwrap();
    let missing = server.url("/chatkit/uploads/atc_missing");
    let no_id = server.url("/chatkit/uploads/");
    for (who, url) in [
        (BOB, url),
        (ALICE, missing.as_str()),
        (ALICE, no_id.as_str()),
    ] {
        upload("PUT", url, Some(who), "text/plain", "x")
            .await
            .assert_error(404, "NOT_FOUND");
    }
    // Alice's upload still works after Bob's attempt.
    let res = upload("PUT", url, Some(ALICE), "text/plain", "mine").await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn no_credential_is_401() {
    let server = app().await;
    let created = create(&server, ALICE, "a.txt", "text/plain").await;
    let url = created["upload_descriptor"]["url"].as_str().unwrap();
    upload("PUT", url, None, "text/plain", "x")
        .await
        .assert_error(401, "UNAUTHORIZED");
    upload("PUT", url, Some("Bearer wrong"), "text/plain", "x")
        .await
        .assert_error(401, "UNAUTHORIZED");
}

const FORM: &str = "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nhi\r\n--x--\r\n";

#[tokio::test]
async fn a_multipart_file_field_is_accepted() {
    let server = app().await;
    let created = create(&server, ALICE, "a.txt", "text/plain").await;
    let url = created["upload_descriptor"]["url"].as_str().unwrap();
    let res = upload(
        "POST",
        url,
        Some(ALICE),
        "multipart/form-data; boundary=x",
        FORM,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["id"], created["id"]);
    assert!(res.json()["upload_descriptor"].is_null());
}

#[tokio::test]
async fn other_methods_and_media_types_are_refused() {
    let server = app().await;
    let created = create(&server, ALICE, "a.txt", "text/plain").await;
    let url = created["upload_descriptor"]["url"].as_str().unwrap();
    let res = upload("GET", url, Some(ALICE), "text/plain", "").await;
    res.assert_error(405, "METHOD_NOT_ALLOWED");
    let res = upload(
        "POST",
        url,
        Some(ALICE),
        "multipart/mixed; boundary=x",
        FORM,
    )
    .await;
    assert_eq!(res.status, 415, "{}", res.text());
    assert_eq!(res.headers["content-type"], "application/json");
    let res = upload(
        "POST",
        url,
        Some(ALICE),
        "multipart/form-data; boundary=x",
        "--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--x--\r\n",
    )
    .await;
    res.assert_error(400, "BAD_REQUEST");
}

/// The upload service on its own, with a small limit, behind the same authentication.
async fn small_limit() -> (TestServer, InMemoryAttachmentStore, InMemoryStore, String) {
    let files = InMemoryAttachmentStore::new("http://127.0.0.1/uploads");
    let store = InMemoryStore::new();
    let ctx = RequestContext::new("alice");
    let params = AttachmentCreateParams {
        name: "a.bin".into(),
        size: 16,
        mime_type: "application/octet-stream".into(),
    };
    let attachment = within(files.create_attachment(&params, &ctx))
        .await
        .unwrap();
    within(store.save_attachment(&attachment, &ctx))
        .await
        .unwrap();
    let uploads = AttachmentUploadService::new(files.clone(), store.clone()).body_limit(16);
    let auth = AuthLayer::new(StaticTokens::parse("alice-token=alice").unwrap());
    let server = within(common::serve(tower::Layer::layer(&auth, uploads))).await;
    (server, files, store, attachment.id().to_owned())
}

#[tokio::test]
async fn an_oversize_upload_is_413_and_nothing_is_kept() {
    let (server, files, store, id) = small_limit().await;
    let url = server.url(&format!("/uploads/{id}"));
    upload(
        "PUT",
        &url,
        Some(ALICE),
        "application/octet-stream",
        vec![7u8; 17],
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    let ctx = RequestContext::new("alice");
    assert!(files.bytes(&id, &ctx).is_none());
    let record = within(store.load_attachment(&id, &ctx)).await.unwrap();
    assert!(record.upload_descriptor().is_some());

    // At the limit it is accepted, and the saved record loses its descriptor.
    let res = upload(
        "PUT",
        &url,
        Some(ALICE),
        "application/octet-stream",
        vec![7u8; 16],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(files.bytes(&id, &ctx).unwrap(), vec![7u8; 16]);
    let record = within(store.load_attachment(&id, &ctx)).await.unwrap();
    assert!(record.upload_descriptor().is_none());
}

#[tokio::test]
async fn a_multipart_upload_keeps_the_file_fields_bytes() {
    let (server, files, store, id) = small_limit().await;
    let url = server.url(&format!("/uploads/{id}"));
    let form = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nbytes\r\n--b--";
    let res = upload(
        "POST",
        &url,
        Some(ALICE),
        "multipart/form-data; boundary=b",
        form,
    )
    .await;
    res.assert_error(413, "PAYLOAD_TOO_LARGE");
    let form =
        "--b\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name=file\r\n\r\nbytes\r\n--b--";
    assert!(form.len() > 16);
    let uploads = AttachmentUploadService::new(files.clone(), store).body_limit(1024);
    let auth = AuthLayer::new(StaticTokens::parse("alice-token=alice").unwrap());
    let roomy = within(common::serve(tower::Layer::layer(&auth, uploads))).await;
    let url = roomy.url(&format!("/uploads/{id}"));
    let res = upload(
        "POST",
        &url,
        Some(ALICE),
        "multipart/form-data; boundary=b",
        form,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let ctx = RequestContext::new("alice");
    assert_eq!(files.bytes(&id, &ctx).unwrap(), "bytes");
}
