//! Sign-in for people (OpenID Connect), end to end over HTTP as a web app and a browser do it:
//! discovery → authorization request → sign-in page → code → token exchange with PKCE → ID
//! token verified against the published keys.

use crate::harness::{self, Sim, small_spec};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

const REDIRECT: &str = "http://127.0.0.1:53682/callback";

async fn start() -> Sim {
    let mut spec = small_spec(11);
    spec.users = 6;
    spec.groups = 3;
    harness::start(harness::config(spec)).await
}

/// A PKCE verifier (43 characters) and its S256 challenge.
fn pkce(seed: u8) -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode([seed; 32]);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn client(sim: &Sim) -> (String, String) {
    let c = &sim.server.sim.cfg;
    (c.client_id.clone(), c.client_secret.clone())
}

fn tenant_id(sim: &Sim) -> String {
    sim.server.sim.cfg.tenant_id.clone()
}

/// The parameters of an authorization request for the default app.
fn request(sim: &Sim, state: &str, nonce: &str, challenge: &str) -> Vec<(String, String)> {
    let (client_id, _) = client(sim);
    [
        ("client_id", client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("response_mode", "query"),
        ("scope", "openid profile email"),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn authorize_url(sim: &Sim) -> String {
    format!("{}/{}/oauth2/v2.0/authorize", sim.url(), tenant_id(sim))
}

/// Posts the sign-in form with `login` and `passwd`.
async fn submit(
    sim: &Sim,
    params: &[(String, String)],
    login: &str,
    passwd: &str,
) -> reqwest::Response {
    let mut form = params.to_vec();
    form.push(("login".into(), login.into()));
    form.push(("passwd".into(), passwd.into()));
    sim.http
        .post(authorize_url(sim))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The query parameters of a redirect's `Location`.
fn location(resp: &reqwest::Response) -> (String, Vec<(String, String)>) {
    assert_eq!(resp.status(), 302, "expected a redirect");
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    let url = url::Url::parse(&loc).unwrap();
    let pairs = url.query_pairs().into_owned().collect();
    (loc, pairs)
}

fn param<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

/// Signs user `upn` in through the form and returns the code.
async fn sign_in(sim: &Sim, upn: &str, state: &str, nonce: &str, challenge: &str) -> String {
    let params = request(sim, state, nonce, challenge);
    let password = cairn_sim::user_password(sim.server.sim.cfg.tenant.seed, upn);
    let resp = submit(sim, &params, upn, &password).await;
    let (loc, pairs) = location(&resp);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&pairs, "state"), Some(state));
    param(&pairs, "code").expect("a code").to_owned()
}

/// Redeems a code at the token endpoint: (status, body).
async fn redeem(sim: &Sim, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let (client_id, secret) = client(sim);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let resp = sim
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sim.url(),
            tenant_id(sim)
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Verifies an ID token with the published keys (and the crate the field uses); returns its
/// claims and its `kid`.
async fn verify(sim: &Sim, id_token: &str) -> (Value, String) {
    let disc: Value = sim
        .http
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            sim.url(),
            tenant_id(sim)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks: JwkSet = sim
        .http
        .get(disc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a kid header");
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[client(sim).0]);
    validation.set_issuer(&[disc["issuer"].as_str().unwrap()]);
    let data =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the ID token verifies");
    (data.claims, kid)
}

/// The ids of the groups whose `/groups/{id}/members` lists `user_id`, asked of Graph.
async fn groups_of(sim: &Sim, user_id: &str) -> BTreeSet<String> {
    let (groups, _) = sim.walk("/groups", &[]).await.unwrap();
    let mut out = BTreeSet::new();
    for g in groups {
        let id = g["id"].as_str().unwrap();
        let (members, _) = sim
            .walk(&format!("/groups/{id}/members"), &[])
            .await
            .unwrap();
        if members.iter().any(|m| m["id"] == user_id) {
            out.insert(id.to_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_sign_in_flow() {
    let sim = start().await;
    let tid = tenant_id(&sim);
    let domain = sim.server.sim.cfg.tenant.domain.clone();
    let user = sim.server.sim.model.tenant.user(0).unwrap();

    // Discovery, by tenant domain as by id.
    let disc: Value = sim
        .http
        .get(format!(
            "{}/{domain}/v2.0/.well-known/openid-configuration",
            sim.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = format!("{}/{tid}", sim.url());
    assert_eq!(disc["issuer"], format!("{base}/v2.0"));
    assert_eq!(
        disc["authorization_endpoint"],
        format!("{base}/oauth2/v2.0/authorize")
    );
    assert_eq!(disc["token_endpoint"], format!("{base}/oauth2/v2.0/token"));
    assert_eq!(disc["jwks_uri"], format!("{base}/discovery/v2.0/keys"));
    assert_eq!(
        disc["end_session_endpoint"],
        format!("{base}/oauth2/v2.0/logout")
    );
    assert_eq!(
        disc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(disc["code_challenge_methods_supported"], json!(["S256"]));

    // The sign-in page holds the form, with the request carried along.
    let (verifier, challenge) = pkce(1);
    let params = request(&sim, "st-123", "n-456", &challenge);
    let page = sim
        .http
        .get(disc["authorization_endpoint"].as_str().unwrap())
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<form method="post" action="/"#), "{html}");
    assert!(html.contains(r#"name="login""#) && html.contains(r#"name="passwd""#));
    assert!(html.contains(r#"name="state" value="st-123""#), "{html}");
    assert!(
        !html.contains("src=") && !html.contains("<link") && !html.contains("url("),
        "no external assets"
    );

    // Wrong password, unknown user: the page again, with Entra's errors.
    let resp = submit(&sim, &params, &user.upn, "not-the-password").await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("AADSTS50126"), "{html}");
    assert!(html.contains(&user.upn), "the login is kept");
    let resp = submit(&sim, &params, &format!("nobody@{domain}"), "x").await;
    assert!(resp.text().await.unwrap().contains("AADSTS50034"));

    // The password is listed by the admin endpoint.
    let passwords: Value = sim
        .http
        .get(format!("{}/_sim/passwords", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = passwords
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"] == user.upn.as_str())
        .expect("the user is listed");
    let password = cairn_sim::user_password(11, &user.upn);
    assert_eq!(listed["password"], password.as_str());

    // The right password: back to the app with a code and the same state.
    let resp = submit(&sim, &params, &user.upn.to_uppercase(), &password).await;
    let (loc, pairs) = location(&resp);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&pairs, "state"), Some("st-123"));
    let code = param(&pairs, "code").unwrap().to_owned();

    // Token exchange with the verifier.
    let (status, body) = redeem(&sim, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(body["access_token"].as_str().unwrap().starts_with("eyJ"));
    assert!(body["scope"].as_str().unwrap().contains("openid"));

    let (claims, _) = verify(&sim, body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["tid"], tid.as_str());
    assert_eq!(claims["oid"], user.id.as_str());
    assert_eq!(claims["preferred_username"], user.upn.as_str());
    assert_eq!(claims["name"], user.display_name.as_str());
    assert_eq!(claims["email"], user.upn.as_str());
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["aud"], client(&sim).0.as_str());
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims.get("roles").is_none(), "no app role assigned yet");
    let sub = claims["sub"].as_str().unwrap().to_owned();
    assert_ne!(sub, user.id);

    // groups: what Graph's /groups/{id}/members say about the user.
    let in_token: BTreeSet<String> = claims["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_owned())
        .collect();
    let from_graph = groups_of(&sim, &user.id).await;
    assert!(!from_graph.is_empty(), "user 0 is in a group");
    assert_eq!(in_token, from_graph);

    // An app role assigned to the user appears in the next sign-in's token, sub unchanged.
    let resp = sim
        .http
        .post(format!("{}/_sim/app-roles", sim.url()))
        .json(&json!({"client_id": client(&sim).0, "user": user.upn, "role": "Portal.Admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (verifier, challenge) = pkce(2);
    let code = sign_in(&sim, &user.upn, "s2", "n2", &challenge).await;
    let (status, body) = redeem(&sim, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{body}");
    let (claims, _) = verify(&sim, body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["roles"], json!(["Portal.Admin"]));
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["nonce"], "n2");

    // The delegated access token carries no application permission.
    let me = sim
        .http
        .get(format!("{}/v1.0/users", sim.url()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_single_use_and_bound_to_the_verifier() {
    let sim = start().await;
    let upn = sim.server.sim.model.tenant.user(1).unwrap().upn;

    let (verifier, challenge) = pkce(3);
    let code = sign_in(&sim, &upn, "a", "n", &challenge).await;
    let (status, _) = redeem(&sim, &code, Some(&verifier)).await;
    assert_eq!(status, 200);
    let (status, body) = redeem(&sim, &code, Some(&verifier)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS54005"),
        "{body}"
    );
    assert_eq!(body["error_codes"], json!([54005]));

    // A wrong verifier, or none, is refused.
    let (_, challenge) = pkce(4);
    let code = sign_in(&sim, &upn, "b", "n", &challenge).await;
    let (wrong, _) = pkce(5);
    let (status, body) = redeem(&sim, &code, Some(&wrong)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS501481"),
        "{body}"
    );
    let code = sign_in(&sim, &upn, "c", "n", &challenge).await;
    let (status, body) = redeem(&sim, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS501481")
    );

    // A wrong client secret is the client's problem, not the code's.
    let code = sign_in(&sim, &upn, "d", "n", &challenge).await;
    let resp = sim
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sim.url(),
            tenant_id(&sim)
        ))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client(&sim).0.as_str()),
            ("client_secret", "wrong"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_clients_and_redirects_get_an_error_page() {
    let sim = start().await;
    let (_, challenge) = pkce(6);

    let mut params = request(&sim, "s", "n", &challenge);
    params.retain(|(k, _)| k != "redirect_uri");
    params.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    let resp = sim
        .http
        .get(authorize_url(&sim))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("AADSTS50011"));

    let mut params = request(&sim, "s", "n", &challenge);
    params[0].1 = "00000000-0000-0000-0000-000000000000".into();
    let resp = sim
        .http
        .get(authorize_url(&sim))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("AADSTS700016"));

    // Once the redirect URI is trusted, errors go back to it with the state.
    let mut params = request(&sim, "keep-me", "n", &challenge);
    params.retain(|(k, _)| k != "scope");
    params.push(("scope".into(), "profile".into()));
    let resp = sim
        .http
        .get(authorize_url(&sim))
        .query(&params)
        .send()
        .await
        .unwrap();
    let (loc, pairs) = location(&resp);
    assert!(loc.starts_with(REDIRECT));
    assert_eq!(param(&pairs, "error"), Some("invalid_scope"));
    assert!(
        param(&pairs, "error_description")
            .unwrap()
            .starts_with("AADSTS70011")
    );
    assert_eq!(param(&pairs, "state"), Some("keep-me"));

    // Registered redirect URIs replace the loopback relaxation.
    let resp = sim
        .http
        .post(format!("{}/_sim/apps/redirect-uris", sim.url()))
        .json(&json!({"client_id": client(&sim).0, "uris": ["https://portal.example/signin-oidc"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let params = request(&sim, "s", "n", &challenge);
    let resp = sim
        .http
        .get(authorize_url(&sim))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "loopback is no longer accepted");
    let mut params = request(&sim, "s", "n", &challenge);
    params.retain(|(k, _)| k != "redirect_uri");
    params.push((
        "redirect_uri".into(),
        "https://portal.example/signin-oidc".into(),
    ));
    let resp = sim
        .http
        .get(authorize_url(&sim))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_escapes_what_the_request_carries() {
    let sim = start().await;
    let (_, challenge) = pkce(7);
    let evil = r#""><script>alert(1)</script>"#;
    let mut params = request(&sim, evil, "n", &challenge);
    params.push(("login_hint".into(), "<script>alert(2)</script>@x".into()));
    let resp = sim
        .http
        .get(authorize_url(&sim))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(2)&lt;/script&gt;@x"),
        "{html}"
    );

    // The state comes back intact (encoded) after a sign-in.
    let upn = sim.server.sim.model.tenant.user(2).unwrap().upn;
    let code = sign_in(&sim, &upn, evil, "n", &challenge).await;
    assert!(!code.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_a_key_rollover() {
    let sim = start().await;
    let upn = sim.server.sim.model.tenant.user(0).unwrap().upn;
    let (verifier, challenge) = pkce(8);
    let code = sign_in(&sim, &upn, "s", "n", &challenge).await;
    let (_, old) = redeem(&sim, &code, Some(&verifier)).await;
    let old = old["id_token"].as_str().unwrap().to_owned();
    let (_, old_kid) = verify(&sim, &old).await;

    let rotated: Value = sim
        .http
        .post(format!("{}/_sim/rotate-keys", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    let keys: Value = sim
        .http
        .get(format!(
            "{}/{}/discovery/v2.0/keys",
            sim.url(),
            tenant_id(&sim)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(
                (k["kty"].as_str(), k["use"].as_str()),
                (Some("RSA"), Some("sig"))
            );
            k["kid"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);

    let (_, kid) = verify(&sim, &old).await;
    assert_eq!(kid, old_kid, "a token signed before still verifies");
    let code = sign_in(&sim, &upn, "s", "n", &challenge).await;
    let (_, new) = redeem(&sim, &code, Some(&verifier)).await;
    let (_, kid) = verify(&sim, new["id_token"].as_str().unwrap()).await;
    assert_eq!(kid, new_kid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_returns_to_a_registered_uri_only() {
    let sim = start().await;
    let url = format!("{}/{}/oauth2/v2.0/logout", sim.url(), tenant_id(&sim));
    let resp = sim
        .http
        .get(&url)
        .query(&[
            ("post_logout_redirect_uri", "http://localhost:8400/bye"),
            ("state", "z"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "http://localhost:8400/bye?state=z"
    );
    let resp = sim
        .http
        .get(&url)
        .query(&[("post_logout_redirect_uri", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("signed out"));
}
