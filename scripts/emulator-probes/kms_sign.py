"""KMS on moto_server: ECC_NIST_P256 SIGN_VERIFY keys, Sign/Verify, GetPublicKey, and whether the
signature is a real ECDSA signature (checked locally with `cryptography`)."""

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from _common import attempt, client, report, uid

kms = client("kms")
key = attempt("CreateKey KeySpec=ECC_NIST_P256 KeyUsage=SIGN_VERIFY",
              lambda: kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY",
                                     Description="steward audit checkpoints"))
kid = key["KeyMetadata"]["KeyId"]
md = key["KeyMetadata"]
report("INFO", "KeyMetadata", {k: md.get(k) for k in
       ("KeySpec", "CustomerMasterKeySpec", "KeyUsage", "SigningAlgorithms", "KeyState", "Arn")})
alias = "alias/" + uid("steward-audit")
kms.create_alias(AliasName=alias, TargetKeyId=kid)

pub = attempt("GetPublicKey", lambda: kms.get_public_key(KeyId=kid))
report("INFO", "GetPublicKey fields", {k: (v if k != "PublicKey" else f"{len(v)} bytes DER")
                                       for k, v in pub.items() if k != "ResponseMetadata"})
pk = serialization.load_der_public_key(pub["PublicKey"])
report("OK" if isinstance(pk, ec.EllipticCurvePublicKey) and pk.curve.name == "secp256r1" else "DIFF",
       "PublicKey is DER SubjectPublicKeyInfo on P-256", f"{type(pk).__name__} {getattr(pk, 'curve', None) and pk.curve.name}")

msg = b'{"size":3,"root":"ab"}'
sig = attempt("Sign ECDSA_SHA_256 MessageType=RAW",
              lambda: kms.sign(KeyId=kid, Message=msg, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"))
s = sig["Signature"]
try:
    r_, s_ = utils.decode_dss_signature(s)
    report("OK", "Signature format", f"DER ASN.1 ECDSA-Sig-Value (SEQUENCE r,s), {len(s)} bytes (AWS: same)")
except ValueError:
    report("DIFF", "Signature format", f"not DER: {len(s)} bytes")
try:
    pk.verify(s, msg, ec.ECDSA(hashes.SHA256()))
    report("OK", "RAW signature verifies locally with the GetPublicKey key", "valid")
except InvalidSignature:
    report("DIFF", "RAW signature verifies locally with the GetPublicKey key", "INVALID")

digest = hashlib.sha256(msg).digest()
sig2 = attempt("Sign MessageType=DIGEST (32-byte SHA-256)",
               lambda: kms.sign(KeyId=kid, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"))
try:
    pk.verify(sig2["Signature"], digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    report("OK", "DIGEST signature verifies locally as prehashed SHA-256", "valid")
except InvalidSignature:
    report("DIFF", "DIGEST signature verifies locally as prehashed SHA-256",
           "INVALID (moto hashes the digest again?)")
    try:
        pk.verify(sig2["Signature"], digest, ec.ECDSA(hashes.SHA256()))
        report("INFO", "DIGEST signature verifies as sign(sha256(digest))", "yes: moto ignores MessageType=DIGEST")
    except InvalidSignature:
        pass

attempt("Sign via alias", lambda: kms.sign(KeyId=alias, Message=msg, SigningAlgorithm="ECDSA_SHA_256"))
attempt("Verify (valid)", lambda: kms.verify(KeyId=kid, Message=msg, MessageType="RAW", Signature=s,
                                             SigningAlgorithm="ECDSA_SHA_256"),
        ok_if=lambda r: r.get("SignatureValid") is True)
attempt("Verify tampered message (AWS: KMSInvalidSignatureException)",
        lambda: kms.verify(KeyId=kid, Message=msg + b"x", Signature=s, SigningAlgorithm="ECDSA_SHA_256"),
        expect_error="KMSInvalidSignatureException")
attempt("Sign with RSASSA_PSS_SHA_256 on an ECC key (AWS: ValidationException/InvalidKeyUsage)",
        lambda: kms.sign(KeyId=kid, Message=msg, SigningAlgorithm="RSASSA_PSS_SHA_256"),
        expect_error="ValidationException|InvalidKeyUsageException|KMSInvalidSignatureException")
attempt("Sign with ECDSA_SHA_384 on a P-256 key (AWS: ValidationException/InvalidKeyUsage)",
        lambda: kms.sign(KeyId=kid, Message=msg, SigningAlgorithm="ECDSA_SHA_384"),
        expect_error="ValidationException|InvalidKeyUsageException")
enc = kms.create_key()["KeyMetadata"]["KeyId"]
attempt("Sign with an ENCRYPT_DECRYPT key (AWS: InvalidKeyUsageException)",
        lambda: kms.sign(KeyId=enc, Message=msg, SigningAlgorithm="ECDSA_SHA_256"),
        expect_error="InvalidKeyUsageException")
kms.disable_key(KeyId=kid)
attempt("Sign with a disabled key (AWS: DisabledException)",
        lambda: kms.sign(KeyId=kid, Message=msg, SigningAlgorithm="ECDSA_SHA_256"),
        expect_error="DisabledException")
