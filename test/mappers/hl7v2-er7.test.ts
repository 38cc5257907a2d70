/** The HL7 v2 reader under the mappers: ER7 parsing, decoding, the header, dates, units. */
import iconv from 'iconv-lite';
import { ackCodeFor, decodeEr7, mapHl7v2, readHeader } from '../../mappers/hl7v2';
import { hl7Date, hl7DateTime } from '../../mappers/hl7v2/datetime';
import { parseEr7, parseMsh } from '../../mappers/hl7v2/er7';
import { quantity, unitCode } from '../../mappers/hl7v2/units';
import { MappingError } from '../../mappers/types';
import { thrown } from '../support/thrown';
import { oru, syntheticPatient } from '../../fixtures/synthetic/hl7';
import { demoSources } from '../support/ingest';

const MSH = 'MSH|^~\\&|LIS|CITYHOSP|FHIRGW|CONSORTIUM|20251103093010||ORU^R01^ORU_R01|C1|P|2.5.1';


describe('parseEr7', () => {
  it('reads fields, repetitions, components and subcomponents, MSH counted from MSH-1', () => {
    const msg = parseEr7(`${MSH}\rPID|1||10000101^^^CITYHOSP&2.16.156.10011.1.11.1&ISO^MR~339901195803120317^^^^NI||王^小明`);
    const pid = msg.first('PID')!;
    expect(msg.msh.get(1)).toBe('|');
    expect(msg.msh.get(2)).toBe('^~\\&');
    expect(msg.msh.get(9, 2)).toBe('R01');
    expect(msg.msh.get(10)).toBe('C1');
    expect(pid.get(3)).toBe('10000101');
    expect(pid.get(3, 4, 2)).toBe('2.16.156.10011.1.11.1');
    expect(pid.get(3, 4, 3)).toBe('ISO');
    expect(pid.reps(3).map((r) => [r.repetition, r.get(1), r.get(5)])).toEqual([
      [1, '10000101', 'MR'],
      [2, '339901195803120317', 'NI'],
    ]);
    expect(pid.get(5, 1)).toBe('王');
    expect(pid.get(5, 2)).toBe('小明');
    expect(pid.get(5, 3)).toBeUndefined();
    expect(pid.get(40)).toBeUndefined();
    expect(pid.reps(40)).toEqual([]);
  });

  it('unescapes \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\.br\\ and hex, and keeps what is not an escape', () => {
    const msg = parseEr7(`${MSH}\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\XE4B8AD\\h|C:\\temp\\x|end\\`);
    const nte = msg.first('NTE')!;
    expect(nte.get(3)).toBe('a|b^c&d~e\\f\ng中h');
    expect(nte.get(4)).toBe('C:\\temp\\x');
    expect(nte.get(5)).toBe('end\\');
  });

  it('takes its delimiters from MSH-1 and MSH-2', () => {
    const msg = parseEr7('MSH#$*@%#HIS#CITYHOSP#####ADT$A04#C2\rPID#1##10000101$$$CITYHOSP$MR*X1##王$小明#@F@ and @S@');
    const pid = msg.first('PID')!;
    expect(pid.reps(3).map((r) => r.get(1))).toEqual(['10000101', 'X1']);
    expect(pid.get(5, 2)).toBe('小明');
    expect(pid.get(6)).toBe('# and $');
    expect(msg.msh.get(9, 2)).toBe('A04');
  });

  it('treats "" (HL7 explicit null) and blanks as absent, and trims values', () => {
    const pid = parseEr7(`${MSH}\rPID|1|""|  10000101  |   `).first('PID')!;
    expect(pid.get(2)).toBeUndefined();
    expect(pid.get(3)).toBe('10000101');
    expect(pid.get(4)).toBeUndefined();
  });

  it('splits segments on \\r, \\n and \\r\\n alike and skips blank lines, BOM, MLLP framing', () => {
    const lines = [MSH, 'PID|1||10000101', 'PV1|1|O', 'OBX|1|NM', 'OBX|2|NM'];
    const ids = (text: string): string[] => parseEr7(text).segments.map((s) => `${s.id}${s.index}`);
    const expected = ['MSH1', 'PID1', 'PV11', 'OBX1', 'OBX2'];
    expect(ids(lines.join('\r'))).toEqual(expected);
    expect(ids(lines.join('\n'))).toEqual(expected);
    expect(ids(lines.join('\r\n'))).toEqual(expected);
    expect(ids(`\uFEFF\x0b${lines.join('\r\r')}\r\x1c\r`)).toEqual(expected);
  });

  it('names locations as formatLocation prints them', () => {
    const msg = parseEr7(`${MSH}\rOBX|1|NM\rOBX|2|NM|X|1|abc`);
    const obx2 = msg.all('OBX')[1];
    expect(obx2.at(5)).toEqual({ segment: 'OBX', segmentIndex: 2, field: 5, component: undefined });
    expect(obx2.error('bad', 5, 2).where).toBe('OBX[2]-5.2');
    expect(thrown(() => obx2.number(5)).where).toBe('OBX[2]-5');
    expect(thrown(() => obx2.need(11, 'result status')).code).toBe('required');
    expect(thrown(() => msg.need('OBR', 'results need an order')).where).toBe('OBR');
  });

  it('rejects a line that is not a segment, naming the segment before it', () => {
    const e = thrown(() => parseEr7(`${MSH}\rPID|1||10000101\rOBX|1|TX|X||first line\rsecond line of the same OBX-5||||||F`));
    expect(e.where).toBe('OBX');
    expect(e.code).toBe('structure');
    expect(e.message).toMatch(/unescaped line break in OBX/);
  });

  it('refuses a NUL byte naming its segment and field, without quoting it', () => {
    const e = thrown(() => parseEr7(`${MSH}\rPID|1||10000101||王\u0000^小明`));
    expect(e).toBeInstanceOf(MappingError);
    expect([(e as MappingError).where, (e as MappingError).code]).toEqual(['PID-5', 'value']);
    expect((e as MappingError).message).not.toContain('\u0000');
    expect((thrown(() => parseEr7(`${MSH}\rPID|1\rPID|2||\u0000`)) as MappingError).where).toBe('PID[2]-3');
    expect((thrown(() => parseMsh(`${MSH.replace('|C1|', '|C\u00001|')}`)) as MappingError).where).toBe('MSH-10');
    expect((thrown(() => parseEr7(`${MSH}\rOB\u0000|1`)) as MappingError).message).not.toContain('\u0000');
    // \X00\ is kept as sent rather than decoded into the NUL refused above.
    expect(parseEr7(`${MSH}\rNTE|1||a\\X00\\b`).first('NTE')!.get(3)).toBe('a\\X00\\b');
  });

  it('rejects a message without MSH, or with unusable delimiters', () => {
    expect(thrown(() => parseEr7('PID|1||10000101')).where).toBe('MSH');
    expect(thrown(() => parseEr7('MSH')).where).toBe('MSH-1');
    expect(thrown(() => parseEr7('MSH|^^\\&|HIS')).where).toBe('MSH-2');
  });

  it('reads dates and numbers, and names the field of a bad one', () => {
    const pid = parseEr7(`${MSH}\rPID|1||1||||19580312120000|M|||||abc|20250230`).first('PID')!;
    expect(pid.date(7)).toBe('1958-03-12');
    expect(pid.dateTime(7)).toBe('1958-03-12T12:00:00+08:00');
    expect(thrown(() => pid.number(13)).where).toBe('PID-13');
    expect(thrown(() => pid.dateTime(14)).where).toBe('PID-14');
  });
});

describe('hl7DateTime', () => {
  it.each([
    ['2025', '2025'],
    ['202511', '2025-11'],
    ['20251103', '2025-11-03'],
    ['2025110308', '2025-11-03T08:00:00+08:00'],
    ['202511030830', '2025-11-03T08:30:00+08:00'],
    ['20251103083015', '2025-11-03T08:30:15+08:00'],
    ['20251103083015.123', '2025-11-03T08:30:15.123+08:00'],
    ['20251103083015-0500', '2025-11-03T08:30:15-05:00'],
    ['20251103083015+0000', '2025-11-03T08:30:15+00:00'],
    ['2025-11-03 08:30:15', '2025-11-03T08:30:15+08:00'],
    ['2025-11-03', '2025-11-03'],
  ])('%s -> %s', (raw, fhir) => {
    expect(hl7DateTime(raw)).toBe(fhir);
  });

  it.each(['20250230', '20251301', '20251103250000', '20251103086000', '0000', '2025113', 'yesterday', '20251103083015+1500', ''])(
    'rejects %s',
    (raw) => {
      expect(hl7DateTime(raw)).toBeUndefined();
    },
  );

  it('gives the date part for birth dates', () => {
    expect(hl7Date('19580312083000+0800')).toBe('1958-03-12');
    expect(hl7Date('195803')).toBe('1958-03');
  });
});

describe('decodeEr7', () => {
  const chinese = `MSH|^~\\&|HIS|CITYHOSP|FHIRGW|CONSORTIUM|20251103083015||ADT^A04^ADT_A01|C3|P|2.5.1|||||CHN|GB 18030-2000\nPID|1||10000101^^^^MR||王^小明\n`;

  it('reads GB18030 bytes when MSH-18 says so, and turns line ends into \\r', () => {
    const { text, charset } = decodeEr7(iconv.encode(chinese, 'gb18030'));
    expect(charset).toBe('gb18030');
    expect(text).toBe(chinese.replace(/\n/g, '\r'));
  });

  it.each(['GB18030', 'GBK', 'GB2312', 'gb 18030-2000'])('accepts MSH-18 %s for GB bytes', (name) => {
    const text = chinese.replace('GB 18030-2000', name);
    expect(decodeEr7(iconv.encode(text, 'gb18030')).text).toContain('王^小明');
  });

  it('prefers the Content-Type charset to MSH-18', () => {
    const utf8 = Buffer.from(chinese, 'utf8');
    expect(decodeEr7(utf8, 'utf-8')).toEqual({ text: chinese.replace(/\n/g, '\r'), charset: 'utf-8' });
    expect(decodeEr7(iconv.encode(chinese.replace('GB 18030-2000', ''), 'gb18030'), 'GBK').text).toContain('王^小明');
  });

  it('defaults to UTF-8, drops a byte-order mark, and accepts UNICODE UTF-8', () => {
    const text = chinese.replace('GB 18030-2000', 'UNICODE UTF-8');
    expect(decodeEr7(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')])).text.startsWith('MSH|')).toBe(true);
    expect(decodeEr7(Buffer.from(chinese.replace('GB 18030-2000', ''), 'utf8')).charset).toBe('utf-8');
  });

  it('names MSH-18 for a charset it cannot read, and for bytes that are not the UTF-8 they claim to be', () => {
    const unknown = thrown(() => decodeEr7(Buffer.from(chinese.replace('GB 18030-2000', 'EBCDIC'), 'utf8')));
    expect([unknown.where, unknown.code]).toEqual(['MSH-18', 'not-supported']);
    const undeclared = thrown(() => decodeEr7(iconv.encode(chinese.replace('GB 18030-2000', ''), 'gb18030')));
    expect([undeclared.where, undeclared.code]).toEqual(['MSH-18', 'value']);
    const wrong = thrown(() => decodeEr7(iconv.encode(chinese.replace('GB 18030-2000', 'UNICODE UTF-8'), 'gb18030')));
    expect(wrong.where).toBe('MSH-18');
  });

  it('names the Content-Type when its charset is unknown', () => {
    const e = thrown(() => decodeEr7(Buffer.from(chinese, 'utf8'), 'x-klingon'));
    expect(e.location).toEqual({ path: 'Content-Type charset' });
    expect(ackCodeFor(e)).toBe('AR');
  });
});

describe('readHeader', () => {
  it('reads MSH-3..12 and MSH-18', () => {
    const h = readHeader('MSH|^~\\&|LIS^^|CITYHOSP&2.16.156.10011.1.1&ISO|FHIRGW|CONSORTIUM|202511030930+0800||ORU^R01^ORU_R01|C9|P^T|2.5.1|||||CHN|GB 18030-2000~UNICODE UTF-8\r');
    expect(h).toEqual({
      sendingApplication: 'LIS',
      sendingFacility: 'CITYHOSP',
      receivingApplication: 'FHIRGW',
      receivingFacility: 'CONSORTIUM',
      dateTime: '2025-11-03T09:30:00+08:00',
      messageCode: 'ORU',
      triggerEvent: 'R01',
      messageStructure: 'ORU_R01',
      controlId: 'C9',
      processingId: 'P',
      version: '2.5.1',
      charset: 'GB 18030-2000',
      delimiters: { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' },
    });
  });

  it('reads the header of a message whose body is garbage, with an unusable MSH-7 left out', () => {
    const h = readHeader(`\x0b${MSH.replace('20251103093010', 'soon')}\r\u0000\u0001garbage\nnot|a|segment`);
    expect(h.controlId).toBe('C1');
    expect(h.dateTime).toBeUndefined();
    expect(parseMsh(MSH).get(12)).toBe('2.5.1');
  });

  it('throws naming MSH, MSH-9 or MSH-10 when the message cannot be acknowledged', () => {
    expect(thrown(() => readHeader('PID|1||10000101')).where).toBe('MSH');
    expect(thrown(() => readHeader(MSH.replace('ORU^R01^ORU_R01', ''))).where).toBe('MSH-9');
    expect(thrown(() => readHeader(MSH.replace('|C1|', '||'))).where).toBe('MSH-10');
    expect(thrown(() => readHeader('')).where).toBe('MSH');
  });
});

describe('ackCodeFor', () => {
  it('rejects (AR) for the header, errs (AE) for content and bugs', () => {
    expect(ackCodeFor(new MappingError('x', { segment: 'MSH', field: 9 }))).toBe('AR');
    expect(ackCodeFor(new MappingError('x', { segment: 'OBX', segmentIndex: 2, field: 5 }))).toBe('AE');
    expect(ackCodeFor(new TypeError('bug'))).toBe('AE');
  });
});

describe('units', () => {
  it.each([
    ['mmol/L', 'mmol/L'],
    ['mmol/l', 'mmol/L'],
    ['μmol/L', 'umol/L'],
    ['µmol/L', 'umol/L'],
    ['10^9/L', '10*9/L'],
    ['×10^12/L', '10*12/L'],
    ['IU/L', '[IU]/L'],
    ['mmHg', 'mm[Hg]'],
    ['次/分', '/min'],
    ['mL/min/1.73m2', 'mL/min/{1.73_m2}'],
    ['℃', 'Cel'],
    ['片', '{tbl}'],
  ])('%s is UCUM %s', (written, code) => {
    expect(unitCode(written)).toEqual({ system: 'http://unitsofmeasure.org', code });
  });

  it('keeps an unknown unit as text and reports it; takes a UCUM-marked unit as sent', () => {
    const unknown: string[] = [];
    expect(quantity(0.42, { code: 'S/CO' }, (u) => unknown.push(u))).toEqual({ value: 0.42, unit: 'S/CO' });
    expect(unknown).toEqual(['S/CO']);
    expect(quantity(5, { code: 'mg/dL', text: '毫克/分升' }, () => undefined)).toEqual({ value: 5, unit: '毫克/分升', system: 'http://unitsofmeasure.org', code: 'mg/dL' });
    expect(quantity(2, { code: 'kat/L', system: 'UCUM' }, () => undefined)).toEqual({ value: 2, unit: 'kat/L', system: 'http://unitsofmeasure.org', code: 'kat/L' });
    expect(quantity(7.2, {}, () => undefined)).toEqual({ value: 7.2 });
  });
});

describe('numbers beyond what JSON carries', () => {
  it('refuses an NM value that overflows to Infinity, naming the OBX field', () => {
    const message = oru(syntheticPatient(5), 'INF', 'RINF').replace(/^(OBX\|1\|NM\|[^|]*\|\|)[^|]*/m, `$1${'9'.repeat(400)}`);
    expect(thrown(() => mapHl7v2(message, demoSources().get('city-hospital')!)).where).toBe('OBX-5');
  });
});
