def test_status_is_public_and_reports_components_to_signed_in_users(client, manager_a):
    response = client.get("/api/v1/status")
    assert response.status_code == 200
    assert response.json()["maintenance_mode"]["active"] is False  # anyone: health and maintenance mode
    client.force_login(manager_a)
    body = client.get("/api/v1/status").json()
    assert set(body["components"]) == {"database", "cache", "broker", "beat"}
