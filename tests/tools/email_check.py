#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/tools/email_check.py: an independent checker for trailwatch alarm emails, standard library
# only. Parses the MIME entity with Python's email package, checks its structure, line lengths,
# boundaries, the cid: reference, the HTML (no scripts, no external resources), and decodes the
# PNG with zlib + struct (CRCs, all five filter types) to check its size.
#
#   email_check.py mime FILE [--text-file F] [--contains S]... [--html-contains S]...
#                            [--png-size WxH] [--html-out F] [--png-out F]
#   email_check.py png FILE RAW_OUT     decode a PNG; RAW_OUT gets "W H\n" then RGB bytes
# Exit 0 and a JSON summary on stdout when every check passes; 1 and the reason on stderr if not.
import email
import email.policy
import html
import html.parser
import json
import re
import struct
import sys
import zlib


class Bad(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Bad(msg)


def png_decode(data):
    """Returns (width, height, rows of RGB bytes). Supports bit depth 8, colour types 2 and 3."""
    need(data[:8] == b'\x89PNG\r\n\x1a\n', 'png: bad signature')
    pos, chunks = 8, []
    while pos < len(data):
        need(pos + 8 <= len(data), 'png: truncated chunk header')
        n, typ = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        need(len(body) == n and pos + 12 + n <= len(data), 'png: truncated %r chunk' % typ)
        crc, = struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])
        need(crc == zlib.crc32(typ + body) & 0xffffffff, 'png: bad CRC in %r chunk' % typ)
        chunks.append((typ, body))
        pos += 12 + n
    need(chunks and chunks[0][0] == b'IHDR', 'png: IHDR is not first')
    need(chunks[-1][0] == b'IEND', 'png: IEND is not last')
    w, h, depth, colour, comp, filt, inter = struct.unpack('>IIBBBBB', chunks[0][1])
    need(depth == 8 and colour in (2, 3) and comp == 0 and filt == 0 and inter == 0,
         'png: unsupported IHDR %r' % ((depth, colour, comp, filt, inter),))
    plte = [b for t, b in chunks if t == b'PLTE']
    if colour == 3:
        need(len(plte) == 1 and len(plte[0]) % 3 == 0, 'png: palette image without one PLTE')
    raw = zlib.decompress(b''.join(b for t, b in chunks if t == b'IDAT'))
    bpp = 3 if colour == 2 else 1
    stride = w * bpp
    need(len(raw) == h * (stride + 1), 'png: %d inflated bytes, want %d' % (len(raw), h * (stride + 1)))
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 0:
                p = 0
            elif ft == 1:
                p = a
            elif ft == 2:
                p = b
            elif ft == 3:
                p = (a + b) // 2
            elif ft == 4:
                q = a + b - c
                pa, pb, pc = abs(q - a), abs(q - b), abs(q - c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                raise Bad('png: row %d has filter type %d' % (y, ft))
            line[i] = (line[i] + p) & 0xff
        prev = line
        if colour == 3:
            pal = plte[0]
            out = bytearray()
            for idx in line:
                need(idx * 3 + 3 <= len(pal), 'png: index %d outside the palette' % idx)
                out += pal[idx * 3:idx * 3 + 3]
            rows.append(bytes(out))
        else:
            rows.append(bytes(line))
    return w, h, rows


class HtmlScan(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.srcs, self.hrefs, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k == 'src':
                self.srcs.append(v)
            if k == 'href':
                self.hrefs.append(v)
            need(not k.startswith('on'), 'html: event handler attribute %s on <%s>' % (k, tag))

    def handle_data(self, data):
        self.text.append(data)


def raw_body_lines(raw, boundary_re=None):
    return raw.split(b'\r\n')


def check_mime(path, opts):
    raw = open(path, 'rb').read()
    need(raw.startswith(b'Content-Type: multipart/alternative;'), 'entity does not start with its Content-Type')
    need(b'\n' not in raw.replace(b'\r\n', b''), 'bare LF in the entity')
    need(b'\r' not in raw.replace(b'\r\n', b''), 'bare CR in the entity')
    for i, line in enumerate(raw.split(b'\r\n')):
        need(len(line) <= 76, 'line %d has %d characters (> 76)' % (i + 1, len(line)))
        need(all(b < 128 for b in line), 'line %d has 8-bit bytes' % (i + 1))
    head = raw.split(b'\r\n\r\n', 1)[0].decode('ascii')
    names = [l.split(':', 1)[0].lower() for l in head.split('\r\n') if l and not l[0].isspace()]
    need(names == ['content-type'], 'entity headers %r, want only Content-Type' % names)

    wrapped = b'From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n' + raw
    msg = email.message_from_bytes(wrapped, policy=email.policy.default)
    need(not msg.defects, 'parser defects: %r' % msg.defects)
    need(msg.get_content_type() == 'multipart/alternative', 'root is %s' % msg.get_content_type())
    parts = msg.get_payload()
    need(len(parts) == 2, 'alternative has %d parts' % len(parts))
    tp, rel = parts
    need(tp.get_content_type() == 'text/plain', 'first part is %s' % tp.get_content_type())
    need(tp.get_content_charset() == 'utf-8', 'text charset %s' % tp.get_content_charset())
    need(tp['Content-Transfer-Encoding'] == 'quoted-printable', 'text CTE %s' % tp['Content-Transfer-Encoding'])
    need(rel.get_content_type() == 'multipart/related', 'second part is %s' % rel.get_content_type())
    need(rel.get_param('type') == 'text/html', 'related type= %s' % rel.get_param('type'))
    rparts = rel.get_payload()
    need(len(rparts) == 2, 'related has %d parts' % len(rparts))
    hp, ip = rparts
    need(hp.get_content_type() == 'text/html', 'related first part is %s' % hp.get_content_type())
    need(hp['Content-Transfer-Encoding'] == 'quoted-printable', 'html CTE %s' % hp['Content-Transfer-Encoding'])
    need(ip.get_content_type() == 'image/png', 'related second part is %s' % ip.get_content_type())
    need(ip['Content-Transfer-Encoding'] == 'base64', 'image CTE %s' % ip['Content-Transfer-Encoding'])
    for p in (tp, hp, ip, rel):
        need(not p.defects, 'part defects: %r' % p.defects)

    # Boundaries occur only as delimiter lines.
    for b in (msg.get_boundary(), rel.get_boundary()):
        delim = ('--' + b).encode()
        for line in raw.split(b'\r\n'):
            if b.encode() in line:
                need(line in (delim, delim + b'--') or line.strip().startswith(b'boundary='),
                     'boundary %s occurs inside content: %r' % (b, line[:60]))

    text = tp.get_payload(decode=True).decode('utf-8')
    text = text.replace('\r\n', '\n')
    body_html = hp.get_payload(decode=True).decode('utf-8')

    # Base64 lines: 76 characters except the last.
    b64 = ip.get_payload(decode=False).strip('\r\n').split('\r\n') if '\r\n' in ip.get_payload(decode=False) \
        else ip.get_payload(decode=False).strip('\n').split('\n')
    for i, l in enumerate(b64[:-1]):
        need(len(l) == 76, 'base64 line %d has %d characters' % (i + 1, len(l)))
    need(0 < len(b64[-1]) <= 76, 'last base64 line has %d characters' % len(b64[-1]))
    png = ip.get_payload(decode=True)
    w, h, rows = png_decode(png)
    if opts.get('png_size'):
        need('%dx%d' % (w, h) == opts['png_size'], 'png is %dx%d, want %s' % (w, h, opts['png_size']))

    # HTML: no scripts, no external resources, the cid resolves.
    scan = HtmlScan()
    scan.feed(body_html)
    scan.close()
    for t in ('script', 'iframe', 'object', 'embed', 'link', 'style', 'form', 'base', 'meta_refresh'):
        need(t not in scan.tags, 'html has a <%s> tag' % t)
    cid = ip['Content-ID'].strip()
    need(cid.startswith('<') and cid.endswith('>'), 'Content-ID %r not in angle brackets' % cid)
    cid = cid[1:-1]
    need(scan.srcs == ['cid:' + cid], 'html srcs %r, want exactly [cid:%s]' % (scan.srcs, cid))
    for h_ in scan.hrefs:
        need(re.match(r'^https?://', h_), 'html links to %r' % h_)
    html_text = ''.join(scan.text)

    if opts.get('text_file'):
        want = open(opts['text_file'], encoding='utf-8').read()
        need(text == want, 'text part differs from %s' % opts['text_file'])
    for s in opts.get('contains', []):
        need(s in text, 'text part lacks %r' % s)
    for s in opts.get('html_contains', []):
        need(s in html_text, 'html text lacks %r' % s)
    if opts.get('html_out'):
        open(opts['html_out'], 'w', encoding='utf-8').write(body_html)
    if opts.get('png_out'):
        open(opts['png_out'], 'wb').write(png)
    return {'png': [w, h], 'png_bytes': len(png), 'cid': cid, 'text_chars': len(text),
            'html_chars': len(body_html), 'entity_bytes': len(raw)}


def main(argv):
    if len(argv) >= 3 and argv[1] == 'png':
        w, h, rows = png_decode(open(argv[2], 'rb').read())
        with open(argv[3], 'wb') as f:
            f.write(b'%d %d\n' % (w, h))
            for r in rows:
                f.write(r)
        print(json.dumps({'png': [w, h]}))
        return 0
    if len(argv) >= 3 and argv[1] == 'mime':
        opts, i = {'contains': [], 'html_contains': []}, 3
        while i < len(argv):
            k = argv[i]
            v = argv[i + 1] if i + 1 < len(argv) else None
            need(v is not None, 'option %s needs a value' % k)
            if k == '--contains':
                opts['contains'].append(v)
            elif k == '--html-contains':
                opts['html_contains'].append(v)
            elif k in ('--text-file', '--png-size', '--html-out', '--png-out'):
                opts[k[2:].replace('-', '_')] = v
            else:
                raise Bad('unknown option %s' % k)
            i += 2
        print(json.dumps(check_mime(argv[2], opts)))
        return 0
    sys.stderr.write(__doc__ or 'usage: email_check.py mime FILE [options] | png FILE RAW_OUT\n')
    return 2


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except Bad as e:
        sys.stderr.write('email_check: %s\n' % e)
        sys.exit(1)
