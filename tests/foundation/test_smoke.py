def test_status_is_public_and_reports_components(client, db):
    response = client.get("/api/v1/status")
    assert response.status_code == 200
    body = response.json()
    assert set(body["components"]) == {"database", "cache", "broker", "beat"}
    assert body["maintenance_mode"]["active"] is False
