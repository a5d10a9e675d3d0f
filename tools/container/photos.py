"""gir-rectify's loopback bucket for make container-demo.

upload S3_PREFIX: three colour photos from scikit-image (GIR's own sample source), blurred,
  plus one file that is not an image (a bad input the batch must report and go past).
check S3_PREFIX FIRST.json SECOND.json: one decodable output per good photo; the second run
  wrote none. One line each way; exit 2 on a failure.
"""

import io
import json
import sys

import boto3

GOOD = ("astronaut", "chelsea", "coffee")


def split(url: str) -> tuple[str, str]:
    bucket, _, prefix = url[len("s3://"):].partition("/")
    return bucket, prefix


def upload(url: str) -> None:
    import numpy as np
    from PIL import Image, ImageFilter
    from skimage import data

    bucket, prefix = split(url)
    s3 = boto3.client("s3")
    for name in GOOD:
        img = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
        img = img.resize((img.width // 2, img.height // 2)).filter(ImageFilter.GaussianBlur(2))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92)
        s3.put_object(Bucket=bucket, Key=f"{prefix}{name}.jpg", Body=buf.getvalue())
    s3.put_object(Bucket=bucket, Key=f"{prefix}notes.jpg", Body=b"not an image")
    print(f"uploaded {len(GOOD)} photos and 1 broken file to {url}", file=sys.stderr)


def check(url: str, first: str, second: str) -> None:
    from PIL import Image

    bucket, prefix = split(url)
    s3 = boto3.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])
        if "/_gir/" not in "/" + o["Key"]]
    decoded = 0
    for key in keys:   # rectify writes <photo>.png and its decision, <photo>.json
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith(".json"):
            json.loads(body)
            continue
        Image.open(io.BytesIO(body)).convert("RGB").load()
        decoded += 1
    one, two = json.load(open(first)), json.load(open(second))
    if decoded != len(GOOD) or one.get("written") != len(GOOD) or two.get("written") != 0:
        sys.exit(f"container-demo: error: gir-rectify wrote {decoded} decodable outputs "
                 f"(first run {one}, second {two}); expected {len(GOOD)}, then none")
    print(f"gir-rectify: {decoded} decodable outputs for {len(GOOD)} good photos "
          f"(failed: {one.get('failed')}); the second run wrote {two.get('written')}")


if __name__ == "__main__":
    if sys.argv[1] == "upload":
        upload(sys.argv[2])
    else:
        check(*sys.argv[2:5])
