"""Keyed hashes and the salt (docs/design.md §7)."""

import hashlib
import hmac

from image_example_gen import keys


def test_keyed_hash_is_hmac_sha256_with_the_namespace():
  expected = hmac.new(b'salt', b'patient\x00P-123', hashlib.sha256).hexdigest()
  assert keys.keyed_hash('P-123', 'salt', 'patient') == expected
  assert keys.keyed_hash('P-123', 'salt', 'image') != expected
  assert keys.keyed_hash('P-123', 'other salt', 'patient') != expected


def test_salt_comes_from_the_environment(monkeypatch):
  monkeypatch.setenv(keys.SALT_ENV_VAR, 'from-env')
  assert keys.resolve_salt() == 'from-env'


def test_missing_salt_falls_back_to_the_public_default_with_a_warning(
    monkeypatch, capsys):
  monkeypatch.delenv(keys.SALT_ENV_VAR)
  monkeypatch.setattr(keys, '_warned', False)
  assert keys.resolve_salt() == keys.DEFAULT_SALT
  # On the console, without any logging set up.
  assert keys.SALT_ENV_VAR in capsys.readouterr().err
  assert keys.resolve_salt() == keys.DEFAULT_SALT  # Once per process.
  assert not capsys.readouterr().err
  monkeypatch.setattr(keys, '_warned', False)
  assert keys.resolve_salt(warn=False) == keys.DEFAULT_SALT
  assert not capsys.readouterr().err


def test_salt_fingerprint_changes_with_the_salt_and_hides_it():
  first = keys.salt_fingerprint('a-secret-salt')
  assert first == keys.salt_fingerprint('a-secret-salt')
  assert first != keys.salt_fingerprint('a-secret-salu')
  assert 'secret' not in first and len(first) == 16
