import { describe, expect, it } from 'vitest';
import { splitHostPort, unbracket } from '../../src/lib/fleet/ip.js';

/** The one place brackets come off an IPv6 host (URLs, HOST:PORT listen addresses). */
describe('unbracket and splitHostPort', () => {
  it('takes the brackets off an IPv6 host and leaves everything else as written', () => {
    expect(['[2001:db8::1]', '[::1]', '2001:db8::1', '192.0.2.1', 'edge.example', '[', '[]', '[::1', '::1]'].map(unbracket))
      .toEqual(['2001:db8::1', '::1', '2001:db8::1', '192.0.2.1', 'edge.example', '[', '', '[::1', '::1]']);
  });

  it('splits HOST:PORT at the last colon', () => {
    expect(splitHostPort('[2001:db8::7]:7311')).toEqual({ host: '2001:db8::7', port: 7311 });
    expect(splitHostPort('127.0.0.1:7312')).toEqual({ host: '127.0.0.1', port: 7312 });
    expect(splitHostPort('edge.example:80')).toEqual({ host: 'edge.example', port: 80 });
  });
});
