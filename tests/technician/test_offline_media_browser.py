"""The technician's offline day in Debian's Chromium, the parts with media (issue 29): a photo taken offline waits
in IndexedDB, survives a reload, and uploads when the connection returns, continuing from where an interrupted
upload stopped (one attachment, no piece sent from zero again); the queued entries carry the order's version; and
Scan reads an asset's QR label through Chromium's fake camera with the fallback decoder (this Chromium has no
Barcode Detection API), opening the asset's page.

A lean module of its own beside test_offline_browser.py (whose scenarios take their time): the same live server
fixtures, two scenarios.
"""

import io
import json
import re

import pytest
import segno
from PIL import Image

from tests.technician import test_browser as browser_tests
from tests.technician.test_browser import CHROMIUM, CHROMIUM_ARGS, PHONE, asset_token, make_world, sign_in, wait_until

_async_unsafe_allowed = browser_tests._async_unsafe_allowed
live = browser_tests.live
browser = browser_tests.browser
page = browser_tests.page
pytestmark = browser_tests.pytestmark

PIECE = 262144  # photo-queue.js's piece


def noisy_jpeg(side: int = 900) -> bytes:
    """A photo that does not compress: several pieces long."""
    buffer = io.BytesIO()
    Image.effect_noise((side, side), 90).convert("RGB").save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def write_label_video(text: str, path, width: int = 640, height: int = 480, frames: int = 6) -> None:
    """A Y4M video (what Chromium's fake camera plays) of the asset's QR label held in front of the camera."""
    png = io.BytesIO()
    segno.make(text, error="m").save(png, kind="png", scale=8, border=4)
    label = Image.open(io.BytesIO(png.getvalue())).convert("L")
    frame = Image.new("L", (width, height), 235)
    frame.paste(label, ((width - label.width) // 2, (height - label.height) // 2))
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)


def uploads_of(order_id: int) -> dict:
    from workorders.models import Attachment, ResumableUpload

    return {
        "uploads": list(ResumableUpload.objects.filter(work_order_id=order_id).values("received", "size")),
        "attachments": list(
            Attachment.objects.filter(work_order_id=order_id).values("content_type", "uploaded_by__username")
        ),
    }


INTERRUPT_SECOND_PIECE = """() => {
  window.__pieces = [];
  const real = window.fetch;
  let sent = 0;
  window.fetch = function (url, init) {
    if (init && init.method === "PATCH") {
      window.__pieces.push(Number(init.headers["Upload-Offset"]));
      sent += 1;
      if (sent === 2) return Promise.reject(new TypeError("the connection dropped"));
    }
    return real.apply(this, arguments);
  };
}"""


def test_a_photo_taken_offline_waits_in_indexeddb_and_uploads_resumably(page, live):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    sign_in(page, url)
    try:
        page.wait_for_selector("body[data-offline-saved]")
    except PlaywrightError:
        saving = page.locator("[data-offline-status]").text_content()
        pytest.fail(f"My work was never saved for offline: the page says {saving!r}; problems: {page.problems}")
    page.goto(f"{url}/t/orders/{ids['order']}/")
    version = page.get_attribute("body", "data-version")
    assert re.fullmatch(r"\d+\.\d+", version or "")

    page.context.set_offline(True)
    # a tick queued offline carries the order's version
    page.locator(f"#item-{ids['item']} button[type=submit]").first.click()
    queued = json.loads(page.evaluate("localStorage.getItem('technician.queue.v1')"))
    assert [entry["body"]["version"] for entry in queued] == [version]
    photo = noisy_jpeg()
    assert len(photo) > 2 * PIECE
    page.set_input_files(
        'form[data-form-name="photo"] input[type=file]', {"name": "seal.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    page.get_by_role("button", name="Attach photo").click()
    expect(page.locator("[data-photo-queue]")).to_contain_text("seal.jpg · saved on this phone, waiting to send")
    stored = page.evaluate("technicianPhotos.pending().then(rows => rows.map(r => [r.blob instanceof Blob, r.size]))")
    assert stored == [[True, len(photo)]]  # the blob in IndexedDB
    assert "seal.jpg" not in page.evaluate("JSON.stringify(localStorage)")

    page.reload()  # offline: the saved page, and the photo still waiting
    expect(page.locator("[data-photo-queue]")).to_contain_text("seal.jpg · saved on this phone, waiting to send")
    expect(page.locator("[data-attachments]")).to_have_text("None yet.")

    page.evaluate(INTERRUPT_SECOND_PIECE)
    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    assert wait_until(lambda: len(page.evaluate("window.__pieces")) >= 2)
    assert wait_until(lambda: world(uploads_of, ids["order"])["uploads"] == [{"received": PIECE, "size": len(photo)}])
    assert world(uploads_of, ids["order"])["attachments"] == []
    expect(page.locator("[data-photo-queue]")).to_contain_text("% sent")

    page.evaluate("technicianPhotos.pump().then(() => technicianPhotos.pump())")  # the next try continues
    state = world(uploads_of, ids["order"])
    assert state["uploads"] == [{"received": len(photo), "size": len(photo)}]
    assert state["attachments"] == [{"content_type": "image/jpeg", "uploaded_by__username": "tech"}]
    pieces = page.evaluate("window.__pieces")
    assert pieces[:3] == [0, PIECE, PIECE] and pieces == sorted(pieces)  # resumed at the server's offset
    assert page.evaluate("technicianPhotos.pending().then(rows => rows.length)") == 0
    # the page's "Photos and files" shows it at once, without a reload
    expect(page.locator("[data-attachments] a")).to_have_count(1)
    expect(page.locator("[data-attachments]")).to_contain_text("seal")

    page.evaluate("technicianPhotos.pump()")
    page.reload()
    assert len(world(uploads_of, ids["order"])["attachments"]) == 1
    expect(page.locator("#attachments")).to_contain_text("seal")


def test_signing_out_counts_the_photos_still_waiting_and_removes_them(page, live):
    """A photo still on the phone is a change not yet sent: signing out warns, then removes it with the rest."""
    from playwright.sync_api import expect

    url, world = live
    ids = world(make_world)
    sign_in(page, url)
    page.goto(f"{url}/t/orders/{ids['order']}/")
    page.route("**/uploads/**", lambda route: route.abort())  # the photo cannot leave the phone
    page.set_input_files(
        'form[data-form-name="photo"] input[type=file]',
        {"name": "gasket.jpg", "mimeType": "image/jpeg", "buffer": noisy_jpeg(300)},
    )
    page.context.set_offline(True)
    page.get_by_role("button", name="Attach photo").click()
    expect(page.locator("[data-photo-queue]")).to_contain_text("gasket.jpg · saved on this phone, waiting to send")
    page.context.set_offline(False)

    page.click("text=Sign out")
    expect(page.locator("[data-logout-pending]")).to_contain_text("1 change(s) made offline have not reached")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{url}/t/login/")
    names = page.evaluate("indexedDB.databases().then(found => found.map(db => db.name))")
    assert "technician-photos" not in names


def test_a_qr_label_seen_by_the_fake_camera_opens_the_asset_page(live, browser, tmp_path):
    from playwright.sync_api import expect

    url, world = live
    world(make_world)
    token = world(asset_token, "PMP-1")
    video = tmp_path / "label.y4m"
    write_label_video(f"{url}/t/assets/{token}/", video)
    camera = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = camera.new_context(viewport=PHONE, is_mobile=True, has_touch=True, permissions=["camera"])
        page = context.new_page()
        problems = []
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        sign_in(page, url)
        # this Chromium has no Barcode Detection API: the fallback decoder (ZXing, WebAssembly) stands in
        expect(page.locator("body")).to_have_attribute("data-scan-decoder", "zxing-wasm")
        page.get_by_role("button", name="Scan").click()
        page.wait_for_url(re.compile(rf"/t/assets/{token}/$"), timeout=60_000)
        expect(page.locator("h1")).to_have_text("Cooling pump")
        assert not [p for p in problems if "Content Security Policy" in p or "wasm" in p.lower()], problems
        context.close()
    finally:
        camera.close()
