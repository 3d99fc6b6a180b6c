"""A local Cloud Storage JSON API server, for the tests and the benchmark.

    python tests/gcs_server.py --bucket BUCKET [--objects N --prefix P]

serves gcp-storage-emulator's API (in memory, on 127.0.0.1, a free port) in
its own process and prints `PORT <port>` once it answers; it stops on
SIGTERM or when its stdin closes. Added to the emulator:

* object listings come in pages of at most 1000 names (`maxResults`,
  `pageToken`) and only with the fields asked for (`fields`), as Cloud
  Storage sends them (the emulator sends every name, with every field, in
  one response);
* `GET /_stats` answers `{"list_requests": n}`: the listing requests served,
  so that a test can see how many pages a lister asked for;
* nothing is persisted (the emulator rewrites its whole index after every
  upload), and `--objects N` creates N small objects below `--prefix`
  (`<prefix><folder of 1000>/<n>.png`) directly in the store before serving.

`start` (below) runs it from a test: it waits at most `timeout_s` for the
port and raises with the server's stderr if it does not come, never hangs.
"""

import argparse
import bisect
import dataclasses
import json
import logging
import os
import pathlib
import queue
import subprocess
import sys
import threading
from typing import Any, Dict, Optional

_PAGE_SIZE = 1000
_READY = 'PORT '


@dataclasses.dataclass
class Server:
  """A running server process and how to reach it."""
  process: subprocess.Popen
  endpoint: str
  bucket: str

  def stats(self) -> Dict[str, int]:
    import urllib.request  # pylint: disable=g-import-not-at-top
    with urllib.request.urlopen(f'{self.endpoint}/_stats', timeout=10) as r:
      return json.loads(r.read())

  def stop(self) -> None:
    if self.process.poll() is None:
      self.process.terminate()
      try:
        self.process.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()


def client_environment(endpoint: str,
                       credentials: pathlib.Path) -> Dict[str, str]:
  """What points Beam's gs:// filesystem at the server, without a probe.

  Writes `credentials`: placeholder `authorized_user` credentials with a
  token valid until 2999, which google.auth accepts without a refresh.
  """
  credentials.write_text(json.dumps({
      'type': 'authorized_user', 'client_id': 'test-client-id',
      'client_secret': 'test-not-secret', 'refresh_token': 'test-not-secret',
      'token': 'test-not-secret', 'expiry': '2999-01-01T00:00:00Z'}))
  return {
      # The endpoint of google-cloud-storage, the client behind Beam's gcsio;
      # with it set, the client sends no credentials.
      'STORAGE_EMULATOR_HOST': endpoint,
      # Beam still asks google.auth for default credentials; without a file
      # it probes the GCE metadata server for ~25 s first.
      'GOOGLE_APPLICATION_CREDENTIALS': str(credentials),
      'GOOGLE_CLOUD_PROJECT': 'test-project',
  }


def start(bucket: str, objects: int = 0, prefix: str = '',
          timeout_s: float = 60.0,
          env: Optional[Dict[str, str]] = None) -> Server:
  """Starts the server in a child process; raises if it does not serve."""
  process = subprocess.Popen(
      [sys.executable, str(pathlib.Path(__file__).resolve()), '--bucket',
       bucket, '--objects', str(objects), '--prefix', prefix],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env=env)
  lines: 'queue.Queue[str]' = queue.Queue()
  threading.Thread(target=lambda: lines.put(process.stdout.readline()),
                   daemon=True).start()
  try:
    line = lines.get(timeout=timeout_s)
  except queue.Empty:
    line = ''
  if not line.startswith(_READY):
    process.kill()
    _, stderr = process.communicate()
    raise RuntimeError(
        f'The Cloud Storage test server did not start within {timeout_s} s '
        f'(exit code {process.returncode}):\n{stderr[-3000:]}')
  port = int(line[len(_READY):])
  return Server(process, f'http://127.0.0.1:{port}', bucket)


def _serve(bucket: str, objects: int, prefix: str) -> None:
  # pylint: disable=g-import-not-at-top
  from gcp_storage_emulator import server as server_lib
  from gcp_storage_emulator import storage as storage_lib
  from gcp_storage_emulator.handlers import objects as objects_lib

  storage_lib.Storage._write_config_to_file = lambda self: None  # pylint: disable=protected-access
  counts = {'list_requests': 0}
  sorted_names = {}  # bucket -> its object names, sorted; reset on writes.

  def resetting(method):
    def wrapper(self, bucket_name, *args, **kwargs):
      sorted_names.pop(bucket_name, None)
      return method(self, bucket_name, *args, **kwargs)
    return wrapper

  for method in ('create_file', 'delete_file', 'restore_soft_deleted_file',
                 'delete_bucket'):
    setattr(storage_lib.Storage, method,
            resetting(getattr(storage_lib.Storage, method)))
  wipe = storage_lib.Storage.wipe
  storage_lib.Storage.wipe = lambda self, **kwargs: (sorted_names.clear(),
                                                     wipe(self, **kwargs))

  def paged_ls(request, response, storage, *args, **kwargs):
    """objects.list in pages, as Cloud Storage answers it."""
    del args, kwargs
    counts['list_requests'] += 1
    query = lambda key: (request.query.get(key) or [None])[0]  # pylint: disable=unnecessary-lambda-assignment
    name = request.params['bucket_name']
    if name not in storage.buckets:
      response.status = 404
      return
    prefix = query('prefix') or ''
    delimiter = query('delimiter') or ''
    page_size = min(int(query('maxResults') or _PAGE_SIZE), _PAGE_SIZE)
    bucket_objects = storage.objects.get(name, {})
    if name not in sorted_names:
      sorted_names[name] = sorted(bucket_objects)
    names = sorted_names[name]
    i = bisect.bisect_left(names, query('pageToken') or prefix)
    items, prefixes = [], []
    while (i < len(names) and names[i].startswith(prefix) and
           len(items) + len(prefixes) < page_size):
      rest = names[i][len(prefix):]
      if delimiter and delimiter in rest:
        folder = prefix + rest[:rest.index(delimiter) + len(delimiter)]
        prefixes.append(folder)
        i = bisect.bisect_left(names, folder + '\U0010ffff')
      else:
        items.append(bucket_objects[names[i]])
        i += 1
    body = {'kind': 'storage#objects', 'items': items, 'prefixes': prefixes}
    if i < len(names) and names[i].startswith(prefix):
      body['nextPageToken'] = names[i]
    response.json(_partial(body, query('fields')))

  def stats(request, response, storage, *args, **kwargs):
    del request, storage, args, kwargs
    response.json(counts)

  for _, handlers in server_lib.HANDLERS:
    if handlers.get(server_lib.GET) is objects_lib.ls:
      handlers[server_lib.GET] = paged_ls
  server_lib.HANDLERS = (*server_lib.HANDLERS,
                         (r'^/_stats$', {server_lib.GET: stats}))
  server = server_lib.create_server('127.0.0.1', 0, in_memory=True,
                                    default_bucket=bucket)
  server.start()
  port = server._api._httpd.server_port  # pylint: disable=protected-access
  storage = server._storage  # pylint: disable=protected-access
  for i in range(objects):
    name = f'{prefix}{i // 1000:04d}/{i:07d}.png'
    data = b'%d' % i
    storage.create_file(bucket, name, data,
                        objects_lib._make_object_resource(  # pylint: disable=protected-access
                            f'http://127.0.0.1:{port}', bucket, name,
                            'image/png', len(data)))
  print(f'{_READY}{port}', flush=True)
  try:
    sys.stdin.read()  # Until the parent closes it, or SIGTERM.
  finally:
    server.stop()


def _partial(body: Dict[str, Any], fields: Optional[str]) -> Dict[str, Any]:
  """The JSON API's partial response: `items(name,size),nextPageToken`."""
  if not fields:
    return body
  wanted, depth, token = {}, 0, ''
  for c in fields + ',':
    if c == ',' and not depth:
      name, _, inner = token.partition('(')
      wanted[name] = set(inner[:-1].split(',')) if inner else None
      token = ''
    else:
      depth += (c == '(') - (c == ')')
      token += c
  return {key: value if wanted[key] is None else
          [{k: v for k, v in item.items() if k in wanted[key]}
           for item in value]
          for key, value in body.items() if key in wanted}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--bucket', required=True)
  parser.add_argument('--objects', type=int, default=0)
  parser.add_argument('--prefix', default='')
  args = parser.parse_args()
  logging.basicConfig(level=logging.WARNING)
  os.environ.pop('STORAGE_EMULATOR_HOST', None)
  _serve(args.bucket, args.objects, args.prefix)


if __name__ == '__main__':
  main()
