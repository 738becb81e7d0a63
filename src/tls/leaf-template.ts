import { isIP } from 'node:net';
import { ipBytes, positiveInteger, TAG, time, tlv } from './der.js';

/**
 * The to-be-signed part of a proxy leaf, assembled from bytes that are the
 * same for every leaf of one CA and one leaf key (the issuer's name, the
 * public key, the fixed extensions: made once, with the certificate library)
 * and the few that are not: serial, validity, subject CN and SAN. Minting a
 * leaf is then this assembly plus one signature. Pure: no I/O.
 */
export interface LeafTemplateParts {
  /** The CA certificate's subject Name, DER, exactly as the CA carries it. */
  issuerName: Buffer;
  /** The leaf key's SubjectPublicKeyInfo, DER. */
  subjectPublicKeyInfo: Buffer;
  /** Extensions every leaf carries (basic constraints, key usage, ...), each one DER `Extension`. */
  fixedExtensions: Buffer[];
}

// ecdsa-with-SHA256 (1.2.840.10045.4.3.2), parameters absent (RFC 5758 3.2).
const ECDSA_WITH_SHA256 = tlv(TAG.SEQUENCE, tlv(TAG.OID, Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])));
const VERSION_3 = tlv(TAG.CONTEXT_0, tlv(TAG.INTEGER, Buffer.from([2])));
const OID_COMMON_NAME = tlv(TAG.OID, Buffer.from([0x55, 0x04, 0x03]));
const OID_SUBJECT_ALT_NAME = tlv(TAG.OID, Buffer.from([0x55, 0x1d, 0x11]));
const CRITICAL = Buffer.from([0x01, 0x01, 0xff]); // BOOLEAN TRUE

/** A CN holds at most 64 characters (RFC 5280 ub-common-name); longer names live in the SAN alone. */
const MAX_COMMON_NAME = 64;

export class LeafTemplate {
  private readonly fixedExtensions: Buffer;

  constructor(private readonly parts: LeafTemplateParts) {
    this.fixedExtensions = Buffer.concat(parts.fixedExtensions);
  }

  /** The DER TBSCertificate for these names (the first is the CN), serial and validity. */
  tbs(names: readonly string[], serial: Buffer, notBefore: Date, notAfter: Date): Buffer {
    if (names.length === 0) throw new Error('a server certificate needs at least one name');
    const subject = names[0]!.length <= MAX_COMMON_NAME ? commonName(names[0]!) : tlv(TAG.SEQUENCE);
    return tlv(
      TAG.SEQUENCE,
      VERSION_3,
      positiveInteger(serial),
      ECDSA_WITH_SHA256,
      this.parts.issuerName,
      tlv(TAG.SEQUENCE, time(notBefore), time(notAfter)),
      subject,
      this.parts.subjectPublicKeyInfo,
      tlv(TAG.CONTEXT_3, tlv(TAG.SEQUENCE, this.fixedExtensions, subjectAltName(names, subject.length === 2))),
    );
  }

  /** The DER Certificate: the TBS, the algorithm, and the DER ECDSA-Sig-Value as a BIT STRING. */
  certificate(tbs: Buffer, signature: Buffer): Buffer {
    return tlv(TAG.SEQUENCE, tbs, ECDSA_WITH_SHA256, tlv(TAG.BIT_STRING, Buffer.from([0]), signature));
  }
}

function commonName(name: string): Buffer {
  const attribute = tlv(TAG.SEQUENCE, OID_COMMON_NAME, tlv(TAG.UTF8_STRING, Buffer.from(name, 'utf8')));
  return tlv(TAG.SEQUENCE, tlv(TAG.SET, attribute));
}

/** SAN with a dNSName per host name and an iPAddress per IP literal; critical when the subject is empty (RFC 5280 4.2.1.6). */
function subjectAltName(names: readonly string[], critical: boolean): Buffer {
  const general = names.map((name) => {
    if (isIP(name)) return tlv(TAG.IP_ADDRESS, ipBytes(name));
    // dNSName is an IA5String: a host name reaches here normalised (IDNs as punycode), so ASCII.
    if (!/^[\x21-\x7e]+$/.test(name)) throw new RangeError(`not an ASCII host name: ${JSON.stringify(name)}`);
    return tlv(TAG.DNS_NAME, Buffer.from(name, 'ascii'));
  });
  const value = tlv(TAG.OCTET_STRING, tlv(TAG.SEQUENCE, ...general));
  return critical ? tlv(TAG.SEQUENCE, OID_SUBJECT_ALT_NAME, CRITICAL, value) : tlv(TAG.SEQUENCE, OID_SUBJECT_ALT_NAME, value);
}
