//! The forms of a request Graph accepts besides the one Cairn sends, one contract per form
//! (`docs/simulator.md`, "Request forms and query options"): OData function calls and keys
//! in parentheses, segment names in any case, `$count`, `$filter`, `$orderby`, `$search`,
//! `$expand` where Graph's services answer them — and, where they do not (or the simulator
//! does not serve them), the service's own error code.

use crate::harness::{Sim, config, small_spec, start};
use serde_json::{Value, json};

const EVENTUAL: (&str, &str) = ("ConsistencyLevel", "eventual");

async fn sim() -> Sim {
    start(config(small_spec(61))).await
}

/// A GET's status and JSON body (text bodies as a JSON string).
async fn get(sim: &Sim, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = sim.http.get(sim.abs(path)).bearer_auth(&sim.token);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.expect("the simulator answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a body");
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

async fn ok(sim: &Sim, path: &str, headers: &[(&str, &str)]) -> Value {
    let (status, v) = get(sim, path, headers).await;
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

/// Checks a refusal: status and Graph's error code.
#[track_caller]
fn refused(answer: (u16, Value), status: u16, code: &str) {
    let (s, v) = answer;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

fn ids(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .expect("a collection")
        .iter()
        .map(|x| x["id"].as_str().expect("an id").to_string())
        .collect()
}

/// A user with a mailbox and a OneDrive (user 0 of the small tenant).
async fn mailbox_user(sim: &Sim) -> Value {
    let users = ok(sim, "/users?$select=id,userPrincipalName,mail", &[]).await;
    users["value"][0].clone()
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

/// Everything a delta hands out, following nextLinks to the deltaLink.
async fn delta_ids(sim: &Sim, path: &str) -> (Vec<String>, String) {
    match sim.walk(path, &[]).await {
        Ok((items, Some(link))) => (
            items
                .iter()
                .map(|x| x["id"].as_str().expect("an id").to_string())
                .collect(),
            link,
        ),
        other => panic!("delta {path}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_is_served_with_odata_function_call_syntax() {
    let sim = sim().await;
    let user = mailbox_user(&sim).await;
    let u = id(&user);
    let (plain, plain_link) = delta_ids(
        &sim,
        &format!("/users/{u}/mailFolders/inbox/messages/delta"),
    )
    .await;
    assert!(!plain.is_empty());
    for form in [
        "delta()",
        "microsoft.graph.delta()",
        "microsoft.graph.delta",
    ] {
        let (called, link) = delta_ids(
            &sim,
            &format!("/users/{u}/mailFolders/inbox/messages/{form}"),
        )
        .await;
        assert_eq!(called, plain, "{form}");
        // Links name the function plainly, as Graph's do.
        assert!(link.contains("/messages/delta?"), "{link}");
    }
    let (again, _) = delta_ids(&sim, &plain_link).await;
    assert!(again.is_empty(), "nothing changed since the delta link");
    // Hierarchy and contact deltas too.
    let folders = ok(&sim, &format!("/users/{u}/mailFolders/delta()"), &[]).await;
    assert!(!ids(&folders).is_empty());
    let contacts = ok(&sim, &format!("/users/{u}/contactFolders/delta()"), &[]).await;
    assert!(contacts["@odata.deltaLink"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn drive_delta_takes_function_calls_and_a_token_parameter() {
    let sim = sim().await;
    let user = mailbox_user(&sim).await;
    let drive = ok(&sim, &format!("/users/{}/drive", id(&user)), &[]).await;
    let d = id(&drive);
    let (plain, _) = delta_ids(&sim, &format!("/drives/{d}/root/delta")).await;
    assert!(plain.len() > 1);
    for form in [
        format!("/drives/{d}/items/root/delta()"),
        format!("/drives/{d}/root/delta()"),
        format!("/drives/{d}/root/microsoft.graph.delta()"),
    ] {
        assert_eq!(delta_ids(&sim, &form).await.0, plain, "{form}");
    }
    // `delta(token='latest')`: the function parameter in the call, as `?token=latest`.
    let latest = ok(
        &sim,
        &format!("/drives/{d}/root/delta(token='latest')"),
        &[],
    )
    .await;
    assert_eq!(latest["value"], json!([]), "{latest}");
    let link = latest["@odata.deltaLink"].as_str().expect("a delta link");
    assert!(link.contains("token="), "{link}");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_all_sites_is_served_as_a_function_call() {
    let sim = sim().await;
    let plain = ok(&sim, "/sites/getAllSites", &[]).await;
    assert!(!ids(&plain).is_empty());
    assert_eq!(
        ids(&ok(&sim, "/sites/getAllSites()", &[]).await),
        ids(&plain)
    );
    assert_eq!(
        ids(&ok(&sim, "/sites/microsoft.graph.getAllSites()", &[]).await),
        ids(&plain)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_served_in_parentheses() {
    let sim = sim().await;
    let user = mailbox_user(&sim).await;
    let (u, upn) = (id(&user), user["userPrincipalName"].as_str().unwrap());
    let direct = ok(&sim, &format!("/users/{u}"), &[]).await;
    assert_eq!(ok(&sim, &format!("/users('{u}')"), &[]).await, direct);
    assert_eq!(ok(&sim, &format!("/users(%27{upn}%27)"), &[]).await, direct);
    let inbox = ok(&sim, &format!("/users/{u}/mailFolders/inbox"), &[]).await;
    let keyed = ok(&sim, &format!("/users('{u}')/mailFolders('Inbox')"), &[]).await;
    assert_eq!(keyed["id"], inbox["id"]);
    let first = ok(
        &sim,
        &format!("/users/{u}/mailFolders/inbox/messages?$top=1"),
        &[],
    )
    .await;
    let m = first["value"][0]["id"].as_str().unwrap();
    let msg = ok(&sim, &format!("/users('{u}')/messages('{m}')"), &[]).await;
    assert_eq!(msg["id"], m);
    let groups = ok(&sim, "/groups", &[]).await;
    let g = groups["value"][0]["id"].as_str().unwrap();
    assert_eq!(ok(&sim, &format!("/groups('{g}')"), &[]).await["id"], g);
    refused(
        get(&sim, "/users('00000000-0000-0000-0000-000000000000')", &[]).await,
        404,
        "Request_ResourceNotFound",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn segment_and_well_known_names_match_without_case() {
    let sim = sim().await;
    let user = mailbox_user(&sim).await;
    let u = id(&user);
    let plain = ok(
        &sim,
        &format!("/users/{u}/mailFolders/sentitems/messages?$top=3"),
        &[],
    )
    .await;
    for path in [
        format!("/Users/{u}/MailFolders/SentItems/Messages?$top=3"),
        format!("/USERS/{u}/mailfolders/SENTITEMS/messages?$top=3"),
    ] {
        assert_eq!(ids(&ok(&sim, &path, &[]).await), ids(&plain), "{path}");
    }
    let (plain, _) = delta_ids(
        &sim,
        &format!("/users/{u}/mailFolders/inbox/messages/delta"),
    )
    .await;
    let (loud, _) = delta_ids(
        &sim,
        &format!("/users/{u}/MailFolders/Inbox/Messages/Delta()"),
    )
    .await;
    assert_eq!(loud, plain);
    let drive = ok(&sim, &format!("/Users/{u}/Drive/Root/Children"), &[]).await;
    assert!(!ids(&drive).is_empty());
    // Ids are not names: a directory GUID matches in any case, an Outlook id exactly.
    let upper = ok(&sim, &format!("/users/{}", u.to_uppercase()), &[]).await;
    assert_eq!(upper["id"], u);
    let inbox = ok(&sim, &format!("/users/{u}/mailFolders/inbox"), &[]).await;
    let lower = id(&inbox).to_lowercase();
    refused(
        get(&sim, &format!("/users/{u}/mailFolders/{lower}"), &[]).await,
        404,
        "ErrorItemNotFound",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn count_follows_each_service() {
    let sim = sim().await;
    let users = sim.walk("/users", &[]).await.expect("users").0.len();
    // The directory counts in advanced queries only.
    refused(
        get(&sim, "/users/$count", &[]).await,
        400,
        "Request_UnsupportedQuery",
    );
    let (status, n) = get(&sim, "/users/$count", &[EVENTUAL]).await;
    assert_eq!((status, n.as_u64()), (200, Some(users as u64)), "{n}");
    let (_, n) = get(&sim, "/groups/$count", &[EVENTUAL]).await;
    assert!(n.as_u64().is_some_and(|n| n > 0), "{n}");
    let silent = ok(&sim, "/users?$count=true", &[]).await;
    assert!(
        silent.get("@odata.count").is_none(),
        "ignored without the header"
    );
    let counted = ok(&sim, "/users?$count=true&$top=1", &[EVENTUAL]).await;
    assert_eq!(counted["@odata.count"], users);
    let next = counted["@odata.nextLink"].as_str().expect("more pages");
    let page2 = ok(&sim, next, &[EVENTUAL]).await;
    assert!(
        page2.get("@odata.count").is_none(),
        "on the first page only"
    );
    // Outlook counts without further ado.
    let u = id(&mailbox_user(&sim).await).to_string();
    let folders = ok(
        &sim,
        &format!("/users/{u}/mailFolders?$count=true&$top=2"),
        &[],
    )
    .await;
    let all = sim
        .walk(&format!("/users/{u}/mailFolders"), &[])
        .await
        .expect("folders")
        .0;
    assert_eq!(folders["@odata.count"], all.len());
    let inbox = ok(&sim, &format!("/users/{u}/mailFolders/inbox"), &[]).await;
    let msgs = ok(
        &sim,
        &format!("/users/{u}/mailFolders/inbox/messages?$count=true&$top=1"),
        &[],
    )
    .await;
    assert_eq!(msgs["@odata.count"], inbox["totalItemCount"]);
    assert_eq!(msgs["value"].as_array().unwrap().len(), 1);
    let (status, n) = get(
        &sim,
        &format!("/users/{u}/mailFolders/inbox/messages/$count"),
        &[],
    )
    .await;
    assert_eq!((status, &n), (200, &inbox["totalItemCount"]));
    refused(
        get(&sim, &format!("/users/{u}/drive/root/children/$count"), &[]).await,
        400,
        "invalidRequest",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_filters_follow_the_advanced_query_rules() {
    let sim = sim().await;
    let all = sim.walk("/users", &[]).await.expect("users").0;
    let target = &all[2];
    let name = target["displayName"].as_str().unwrap();
    let first_word = name.split_whitespace().next().unwrap();
    let found = ok(
        &sim,
        &format!("/users?$filter=startswith(displayName,'{first_word}')"),
        &[],
    )
    .await;
    assert!(ids(&found).contains(&id(target).to_string()));
    assert!(found["value"].as_array().unwrap().iter().all(|u| {
        u["displayName"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .starts_with(&first_word.to_lowercase())
    }));
    let upn = target["userPrincipalName"].as_str().unwrap();
    let one = ok(
        &sim,
        &format!("/users?$filter=userPrincipalName eq '{upn}'"),
        &[],
    )
    .await;
    assert_eq!(ids(&one), vec![id(target).to_string()]);
    let some = ok(
        &sim,
        &format!(
            "/users?$filter=id in ('{}', '{}')",
            id(&all[0]),
            id(&all[1])
        ),
        &[],
    )
    .await;
    assert_eq!(ids(&some).len(), 2);
    let disabled = ok(&sim, "/users?$filter=accountEnabled eq false", &[]).await;
    assert!(
        disabled["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["accountEnabled"] == false)
    );
    // `endsWith` and `ne` are advanced queries: refused without the header and $count.
    let domain = upn.split('@').nth(1).unwrap();
    let ends = format!("/users?$filter=endswith(mail,'@{domain}')");
    refused(get(&sim, &ends, &[]).await, 400, "Request_UnsupportedQuery");
    refused(
        get(&sim, &ends, &[EVENTUAL]).await,
        400,
        "Request_UnsupportedQuery",
    );
    let adv = ok(&sim, &format!("{ends}&$count=true"), &[EVENTUAL]).await;
    assert!(adv["@odata.count"].as_u64().is_some_and(|n| n > 0));
    refused(
        get(&sim, "/users?$filter=accountEnabled ne true", &[]).await,
        400,
        "Request_UnsupportedQuery",
    );
    // A property the directory does not filter on, and a clause it cannot read.
    refused(
        get(&sim, "/users?$filter=usageLocation gt 'A'", &[]).await,
        400,
        "Request_UnsupportedQuery",
    );
    refused(
        get(&sim, "/users?$filter=displayName eq", &[]).await,
        400,
        "Request_BadRequest",
    );
    // Groups: the lambda Graph documents for Microsoft 365 groups.
    let groups = ok(
        &sim,
        "/groups?$filter=groupTypes/any(c:c eq 'Unified')",
        &[],
    )
    .await;
    assert!(!ids(&groups).is_empty());
    let none = ok(
        &sim,
        "/groups?$filter=groupTypes/any(c:c eq 'DynamicMembership')",
        &[],
    )
    .await;
    assert!(ids(&none).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn orderby_is_served_where_each_service_sorts() {
    let sim = sim().await;
    let desc = ok(&sim, "/users?$orderby=displayName desc&$top=50", &[]).await;
    let names: Vec<String> = desc["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["displayName"].as_str().unwrap().to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(names, sorted);
    // Directory: sorting a filtered query is an advanced query; jobTitle does not sort.
    let filtered = "/users?$filter=accountEnabled eq true&$orderby=displayName";
    refused(
        get(&sim, filtered, &[]).await,
        400,
        "Request_UnsupportedQuery",
    );
    ok(&sim, &format!("{filtered}&$count=true"), &[EVENTUAL]).await;
    refused(
        get(&sim, "/users?$orderby=jobTitle", &[]).await,
        400,
        "Request_UnsupportedQuery",
    );
    // Outlook: any property; with $filter the sort properties must lead the filter.
    let u = id(&mailbox_user(&sim).await).to_string();
    let base = format!("/users/{u}/mailFolders/inbox/messages");
    let newest = ok(
        &sim,
        &format!("{base}?$orderby=receivedDateTime desc&$top=5"),
        &[],
    )
    .await;
    let times: Vec<&str> = newest["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["receivedDateTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let next = newest["@odata.nextLink"].as_str().expect("more pages");
    let page2 = ok(&sim, next, &[]).await;
    let later = page2["value"][0]["receivedDateTime"].as_str().unwrap();
    assert!(later <= times[4], "the second page goes on in order");
    ok(
        &sim,
        &format!("{base}?$filter=receivedDateTime ge 2000-01-01 and isRead eq false&$orderby=receivedDateTime desc"),
        &[],
    )
    .await;
    refused(
        get(
            &sim,
            &format!("{base}?$filter=isRead eq false&$orderby=receivedDateTime desc"),
            &[],
        )
        .await,
        400,
        "InefficientFilter",
    );
    // Files: children by name.
    let kids = ok(
        &sim,
        &format!("/users/{u}/drive/root/children?$orderby=name desc"),
        &[],
    )
    .await;
    let names: Vec<String> = kids["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outlook_filters_messages_and_delta_keeps_its_filter() {
    let sim = sim().await;
    let u = id(&mailbox_user(&sim).await).to_string();
    let base = format!("/users/{u}/mailFolders/inbox/messages");
    let all = sim.walk(&base, &[]).await.expect("messages").0;
    let unread = ok(
        &sim,
        &format!("{base}?$filter=isRead eq false&$top=100"),
        &[],
    )
    .await;
    let want = all.iter().filter(|m| m["isRead"] == false).count();
    assert_eq!(unread["value"].as_array().unwrap().len(), want);
    let m = &all[1];
    let subject = m["subject"].as_str().unwrap().replace('\'', "''");
    let by_subject = ok(
        &sim,
        &format!(
            "{base}?$filter={}",
            urlencode(&format!(
                "subject eq '{subject}' and hasAttachments eq {}",
                m["hasAttachments"]
            ))
        ),
        &[],
    )
    .await;
    assert!(ids(&by_subject).contains(&id(m).to_string()));
    // messages/delta filters on receivedDateTime ge|gt only, and its links keep the filter.
    let mut times: Vec<&str> = all
        .iter()
        .map(|m| m["receivedDateTime"].as_str().unwrap())
        .collect();
    times.sort();
    let cut = times[times.len() / 2];
    let (recent, _) = match sim
        .walk(
            &format!("{base}/delta()?$filter=receivedDateTime ge {cut}"),
            &[("Prefer", "odata.maxpagesize=2")],
        )
        .await
    {
        Ok((items, link)) => (items, link),
        Err(s) => panic!("filtered delta: {s}"),
    };
    let want = times.iter().filter(|t| **t >= cut).count();
    assert_eq!(recent.len(), want, "every page filtered");
    refused(
        get(&sim, &format!("{base}/delta?$filter=isRead eq false"), &[]).await,
        400,
        "ErrorInvalidUrlQuery",
    );
    refused(
        get(&sim, &format!("{base}/delta?$orderby=subject"), &[]).await,
        400,
        "ErrorInvalidUrlQuery",
    );
    refused(
        get(&sim, &format!("{base}?$filter=subject eq 'x"), &[]).await,
        400,
        "ErrorInvalidUrlQueryFilter",
    );
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn search_is_served_on_messages_and_on_the_directory_with_eventual() {
    let sim = sim().await;
    let u = id(&mailbox_user(&sim).await).to_string();
    let all = sim
        .walk(&format!("/users/{u}/mailFolders/inbox/messages"), &[])
        .await
        .expect("messages")
        .0;
    let word = all[0]["subject"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .find(|w| w.len() > 3 && w.chars().all(char::is_alphanumeric))
        .unwrap_or("the")
        .to_string();
    for q in [
        format!("\"subject:{word}\""),
        format!("\"{word}\""),
        word.clone(),
    ] {
        let found = ok(
            &sim,
            &format!(
                "/users/{u}/mailFolders/inbox/messages?$search={}",
                urlencode(&q)
            ),
            &[],
        )
        .await;
        assert!(
            ids(&found).contains(&id(&all[0]).to_string()),
            "{q}: {found}"
        );
    }
    let mailbox = ok(
        &sim,
        &format!(
            "/users/{u}/messages?$search={}",
            urlencode(&format!("\"subject:{word}\""))
        ),
        &[],
    )
    .await;
    let sent: Vec<&str> = mailbox["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sentDateTime"].as_str().unwrap_or(""))
        .collect();
    assert!(
        sent.windows(2).all(|w| w[0] >= w[1]),
        "newest sent first: {sent:?}"
    );
    refused(
        get(
            &sim,
            &format!("/users/{u}/mailFolders/inbox/messages/delta?$search=x"),
            &[],
        )
        .await,
        400,
        "ErrorInvalidUrlQuery",
    );
    refused(
        get(&sim, &format!("/users/{u}/events?$search=x"), &[]).await,
        400,
        "ErrorInvalidUrlQuery",
    );
    // The directory searches in advanced queries only, clause by named property.
    let users = sim.walk("/users", &[]).await.expect("users").0;
    let last = users[3]["displayName"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let q = format!(
        "/users?$search={}",
        urlencode(&format!("\"displayName:{last}\""))
    );
    refused(get(&sim, &q, &[]).await, 400, "Request_UnsupportedQuery");
    let found = ok(&sim, &q, &[EVENTUAL]).await;
    assert!(ids(&found).contains(&id(&users[3]).to_string()), "{found}");
}

#[tokio::test(flavor = "multi_thread")]
async fn expand_is_served_where_graph_expands_and_refused_in_the_services_words() {
    let sim = sim().await;
    let u = id(&mailbox_user(&sim).await).to_string();
    // Messages expand their attachments (also under $select).
    let all = sim
        .walk(
            &format!("/users/{u}/mailFolders/inbox/messages?$select=id,hasAttachments"),
            &[],
        )
        .await
        .expect("messages")
        .0;
    let with = all
        .iter()
        .find(|m| m["hasAttachments"] == true)
        .expect("a message with attachments");
    let m = ok(
        &sim,
        &format!(
            "/users/{u}/messages/{}?$select=subject&$expand=attachments($select=name)",
            id(with)
        ),
        &[],
    )
    .await;
    let atts = m["attachments"].as_array().expect("attachments expanded");
    assert!(!atts.is_empty());
    assert!(
        atts.iter()
            .all(|a| a["name"].is_string() && a.get("contentBytes").is_none())
    );
    assert!(m.get("body").is_none(), "$select still applies: {m}");
    let listed = ok(
        &sim,
        &format!("/users/{u}/mailFolders/inbox/messages?$expand=attachments&$top=2"),
        &[],
    )
    .await;
    assert!(listed["value"][0]["attachments"].is_array());
    let next = listed["@odata.nextLink"].as_str().expect("more pages");
    assert!(ok(&sim, next, &[]).await["value"][0]["attachments"].is_array());
    // Drive items expand children.
    let root = ok(
        &sim,
        &format!("/users/{u}/drive/root?$expand=children($select=id,name)"),
        &[],
    )
    .await;
    let kids = root["children"].as_array().expect("children expanded");
    assert!(!kids.is_empty() && kids.iter().all(|k| k.get("size").is_none()));
    // List items expand their fields, trimmed by a nested $select.
    let site = ok(&sim, "/sites/root", &[]).await;
    let lists = ok(&sim, &format!("/sites/{}/lists", id(&site)), &[]).await;
    let list = lists["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["list"]["template"] != "documentLibrary")
        .unwrap()
        .clone();
    let items = ok(
        &sim,
        &format!(
            "/sites/{}/lists/{}/items?$expand=fields($select=Title)",
            id(&site),
            id(&list)
        ),
        &[],
    )
    .await;
    let fields = &items["value"][0]["fields"];
    assert!(
        fields["Title"].is_string() && fields.get("Status").is_none(),
        "{fields}"
    );
    // What is not expanded answers as each service refuses a query.
    refused(
        get(&sim, &format!("/users/{u}?$expand=manager"), &[]).await,
        400,
        "Request_UnsupportedQuery",
    );
    refused(
        get(&sim, &format!("/users/{u}/events?$expand=instances"), &[]).await,
        400,
        "ErrorInvalidUrlQuery",
    );
    refused(
        get(
            &sim,
            &format!("/users/{u}/drive/root/children?$expand=thumbnails"),
            &[],
        )
        .await,
        400,
        "invalidRequest",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_filter_on_what_sharepoint_indexes() {
    let sim = sim().await;
    let u = id(&mailbox_user(&sim).await).to_string();
    let kids = ok(&sim, &format!("/users/{u}/drive/root/children"), &[]).await;
    let name = kids["value"][0]["name"]
        .as_str()
        .unwrap()
        .replace('\'', "''");
    let one = ok(
        &sim,
        &format!(
            "/users/{u}/drive/root/children?$filter={}",
            urlencode(&format!("name eq '{name}'"))
        ),
        &[],
    )
    .await;
    assert_eq!(
        ids(&one),
        vec![kids["value"][0]["id"].as_str().unwrap().to_string()]
    );
    refused(
        get(
            &sim,
            &format!("/users/{u}/drive/root/children?$filter=file ne null"),
            &[],
        )
        .await,
        400,
        "notSupported",
    );
    let site = ok(&sim, "/sites/root", &[]).await;
    let lists = ok(&sim, &format!("/sites/{}/lists", id(&site)), &[]).await;
    let list = lists["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["displayName"] == "Issue tracker")
        .unwrap()
        .clone();
    let items = format!("/sites/{}/lists/{}/items", id(&site), id(&list));
    let q = format!(
        "{items}?expand=fields&$filter={}",
        urlencode("fields/Status eq 'Active'")
    );
    refused(get(&sim, &q, &[]).await, 400, "invalidRequest");
    let honoured = ok(
        &sim,
        &q,
        &[("Prefer", "HonorNonIndexedQueriesWarningMayFailRandomly")],
    )
    .await;
    assert!(
        honoured["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["fields"]["Status"] == "Active")
    );
    refused(
        get(&sim, "/sites/getAllSites?$filter=name eq 'x'", &[]).await,
        400,
        "invalidRequest",
    );
    refused(
        get(
            &sim,
            &format!("/users/{u}/drive/root/delta?$filter=name eq 'x'"),
            &[],
        )
        .await,
        400,
        "invalidRequest",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_parts_take_the_same_forms() {
    let sim = sim().await;
    let u = id(&mailbox_user(&sim).await).to_string();
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users('{u}')/MailFolders('Inbox')/messages/delta()")},
        {"id": "2", "method": "GET", "url": "/sites/getAllSites()"},
        {"id": "3", "method": "GET", "url": "/users/$count", "headers": {"ConsistencyLevel": "eventual"}},
        {"id": "4", "method": "GET", "url": "/users/$count"},
    ]});
    let resp = sim
        .http
        .post(sim.abs("/$batch"))
        .bearer_auth(&sim.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    let part = |id: &str| {
        v["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(part("1")["status"], 200, "{v}");
    assert!(part("1")["body"]["value"].is_array());
    assert_eq!(part("2")["status"], 200, "{v}");
    assert_eq!(part("3")["status"], 200, "{v}");
    assert_eq!(part("4")["status"], 400, "{v}");
    assert_eq!(
        part("4")["body"]["error"]["code"],
        "Request_UnsupportedQuery"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_graph_has_no_resource_for_answer_bad_request() {
    let sim = sim().await;
    let u = id(&mailbox_user(&sim).await).to_string();
    for path in [
        format!("/users/{u}/mailFolders/inbox/nosuchthing"),
        format!("/users/{u}/todo/nosuchthing"),
        "/nosuchthing".to_string(),
    ] {
        let (s, v) = get(&sim, &path, &[]).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert_eq!(v["error"]["code"], "BadRequest", "{path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Resource not found for the segment"),
            "{v}"
        );
    }
}
