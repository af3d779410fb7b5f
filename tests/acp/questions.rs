//! `ask_user` questions (with options: a permission request of answers;
//! without: the turn ends and the next prompt answers) and ask mode.

use super::*;

#[actix_web::test]
async fn ask_user_with_options_is_a_permission_request_of_answers() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<ask_user question="Which colour?">red; dark blue</ask_user><update status="102">asked</update>"#
                .into(),
        ),
        Reply::Content(r#"<update status="200">blue it is</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let shared = Shared::default();
    seen(&shared).answers.push_back("answer_1".into());
    let cwd = place.cwd();
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "pick a colour").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let names: Vec<String> = seen(&shared).permissions[0]
        .options
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(names, ["red", "dark blue"]);
    let asked = provider.requests()[1].to_string();
    assert!(asked.contains("dark blue"), "the answer reached the model");
}

#[actix_web::test]
async fn ask_user_without_options_ends_the_turn_and_the_next_prompt_answers() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<ask_user question="What is your name?"></ask_user><update status="102">asked</update>"#
                .into(),
        ),
        Reply::Content(r#"<update status="200">hello Ada</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let shared = Shared::default();
    let cwd = place.cwd();
    let (first, second) = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let first = prompt(&cx, &session, "greet me").await;
            let asked = messages(&shared);
            assert!(asked.contains("What is your name?"), "{asked}");
            let second = prompt(&cx, &session, "Ada").await;
            Ok((first, second))
        },
    )
    .await;
    assert_eq!((first, second), (StopReason::EndTurn, StopReason::EndTurn));
    assert!(seen(&shared).permissions.is_empty());
    assert!(
        provider.requests()[1].to_string().contains("Ada"),
        "the second prompt answered the question"
    );
    assert!(
        messages(&shared).contains("hello Ada"),
        "{}",
        messages(&shared)
    );
}

#[actix_web::test]
async fn ask_mode_through_set_mode_refuses_file_changes() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<set path="a.txt">changed</set><update status="102">try</update>"#.into(),
        ),
        Reply::Content(r#"<update status="200">answered only</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "same");
    let shared = Shared::default();
    let cwd = place.cwd();
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let bad = cx
                .send_request(SetSessionModeRequest::new(session.clone(), "yolo"))
                .block_task()
                .await;
            assert!(bad.is_err(), "only ask and act exist");
            cx.send_request(SetSessionModeRequest::new(session.clone(), "ask"))
                .block_task()
                .await?;
            Ok(prompt(&cx, &session, "change a.txt").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(
        place.file("a.txt").as_deref(),
        Some("same"),
        "ask mode changes nothing"
    );
    assert!(seen(&shared).permissions.is_empty(), "nothing to permit");
}
