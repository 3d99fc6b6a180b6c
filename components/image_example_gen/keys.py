"""Keyed hashes for identifiers (docs/design.md §7).

Identifiers that leave a component (image keys, patient keys) are
HMAC-SHA256 digests under a secret salt, so they can be joined and split on
but not reversed by anyone without the salt.
"""

import hashlib
import hmac
import os
from typing import Optional

from image_example_gen import console

SALT_ENV_VAR = 'IMAGE_EXAMPLE_GEN_SALT'
# Public, hence only a fallback: short ids hashed with it can be brute-forced.
DEFAULT_SALT = 'image-example-gen-public-default-salt'


# Whether this process has warned that no salt is set.
_warned = False


def resolve_salt(env_var: str = SALT_ENV_VAR, warn: bool = True) -> str:
  """Returns the salt from `env_var`, or the public default.

  Without a salt, `warn` prints a warning on the console (`console.logger`),
  once per process (a demo of four pipelines warns once); the executors ask
  with it, the driver (which only fingerprints the salt) without.
  """
  global _warned
  salt = os.environ.get(env_var)
  if salt:
    return salt
  if warn and not _warned:
    _warned = True
    console.logger().warning(
        'Warning: no salt in $%s: identifiers are hashed with the public '
        'default salt. Short ids (patient ids, file names) hashed with a '
        'public salt can be reversed by trying every candidate; set $%s to '
        'a secret for real data.', env_var, env_var)
  return DEFAULT_SALT


def keyed_hash(value: str, salt: str, namespace: Optional[str] = None) -> str:
  """Hex HMAC-SHA256 of `value` under `salt`.

  `namespace` separates kinds of identifier, so that a patient id and an
  image id that happen to be equal do not get equal keys.
  """
  message = f'{namespace}\x00{value}' if namespace else value
  return hmac.new(salt.encode('utf-8'), message.encode('utf-8'),
                  hashlib.sha256).hexdigest()


def salt_fingerprint(salt: str) -> str:
  """A short keyed hash that changes with the salt and does not reveal it.

  Part of the ExampleGens' input fingerprint, so that a new salt invalidates
  the MLMD cache instead of serving Examples keyed under the old one.
  """
  return keyed_hash('salt', salt, 'fingerprint')[:16]
