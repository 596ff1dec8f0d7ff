"""Images sized for the page: shrunk before they are embedded, linked to their full-size file."""
import base64
import io
import re

import numpy as np
from PIL import Image

from orchestrator.report.html import IMAGE_WIDTH, THUMB_WIDTH, image


def test_images_are_shrunk_to_the_page_and_link_their_full_size(tmp_path):
    path = tmp_path / "traversal.png"
    Image.fromarray((np.random.default_rng(0).random((300, 2000)) * 255).astype(np.uint8)).save(path)
    widths = {}
    for thumb in (False, True):
        html = image(path, "a <caption>", thumb=thumb, link="trials/3/traversal.png")
        data = base64.b64decode(re.search(r"base64,([^\"]+)", html).group(1))
        with Image.open(io.BytesIO(data)) as im:
            widths[thumb] = im.size
        assert '<a href="trials/3/traversal.png"' in html and "a &lt;caption&gt;" in html
    assert widths == {False: (IMAGE_WIDTH, 144), True: (THUMB_WIDTH, 60)}
    small = tmp_path / "small.png"
    Image.new("L", (50, 20)).save(small)
    assert base64.b64encode(small.read_bytes()).decode() in image(small, "small")  # a small image as it is
