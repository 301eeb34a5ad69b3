//! XML-RPC over Horde's `xmlrpc` import: `xmlrpc.call(endpoint, method,
//! ...params)` with native values, or a `Client` bound to an endpoint. The
//! host sends each call through its HTTP client (grants, keep-alive) and
//! records it as type `xmlrpc`, named by the method.
//!
//! Values: numbers (integers in 32 bits as <int>, larger as <i8>, others
//! <double>), BigInt (<i8>), booleans, strings, null (<nil/>), Date
//! (<dateTime.iso8601>), Uint8Array (<base64>), arrays and plain objects
//! (<struct>). A fault throws `XmlRpcFault` with `faultCode` (of any type, as
//! the server sent it: a string such as "Client" too) and `faultString`.

import * as wit from 'horde:scenario/xmlrpc@0.1.0';
import { describeError, errorPayload } from './http.js';

/** A fault the server returned. */
export class XmlRpcFault extends Error {
  constructor(faultCode, faultString) {
    super(`fault ${faultCode}: ${faultString}`);
    this.name = 'XmlRpcFault';
    this.faultCode = faultCode;
    this.faultString = faultString;
  }
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

function toNodes(value, nodes, depth = 0) {
  if (depth > 64) throw new Error('XML-RPC values nest more than 64 levels');
  if (value === null || value === undefined) nodes.push({ tag: 'nil' });
  else if (typeof value === 'boolean') nodes.push({ tag: 'boolean', val: value });
  else if (typeof value === 'bigint') nodes.push({ tag: 'i8', val: value });
  else if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= -2147483648 && value <= 2147483647) nodes.push({ tag: 'int', val: value });
    else if (Number.isSafeInteger(value)) nodes.push({ tag: 'i8', val: BigInt(value) });
    else nodes.push({ tag: 'double', val: value });
  } else if (typeof value === 'string') nodes.push({ tag: 'string', val: value });
  else if (value instanceof Date) {
    const d = value;
    const text = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    nodes.push({ tag: 'date-time', val: text });
  } else if (value instanceof Uint8Array) nodes.push({ tag: 'base64', val: value });
  else if (Array.isArray(value)) {
    nodes.push({ tag: 'array', val: value.length });
    for (const item of value) toNodes(item, nodes, depth + 1);
  } else if (typeof value === 'object') {
    const names = Object.keys(value);
    nodes.push({ tag: 'struct', val: names });
    for (const name of names) toNodes(value[name], nodes, depth + 1);
  } else {
    throw new TypeError(`${typeof value} cannot be sent as an XML-RPC value`);
  }
  return nodes;
}

function parseDate(text) {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})/.exec(text);
  return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : text;
}

/** One value from `nodes` at `position.at` (pre-order), advancing it. */
function fromNodes(nodes, position) {
  const node = nodes[position.at++];
  switch (node.tag) {
    case 'int': case 'boolean': case 'string': case 'double': case 'base64':
      return node.val;
    case 'i8':
      return Number.isSafeInteger(Number(node.val)) ? Number(node.val) : node.val;
    case 'date-time':
      return parseDate(node.val);
    case 'nil':
      return null;
    case 'array': {
      const items = [];
      for (let i = 0; i < node.val; i++) items.push(fromNodes(nodes, position));
      return items;
    }
    case 'struct': {
      const object = {};
      for (const name of node.val) object[name] = fromNodes(nodes, position);
      return object;
    }
    default:
      throw new Error(`unknown XML-RPC node ${node.tag}`);
  }
}

/** Call `method` at `endpoint` (a URL, or a path relative to `--host`). */
export function call(endpoint, method, ...params) {
  const nodes = [];
  for (const param of params) toNodes(param, nodes);
  let reply;
  try {
    reply = wit.call(String(endpoint), String(method), nodes);
  } catch (thrown) {
    const error = errorPayload(thrown);
    switch (error?.tag) {
      case 'fault': {
        // The record holds an int code only; the host keeps the faultCode
        // of any type (a string such as "Client") for this.
        const code = wit.lastFaultCode();
        throw new XmlRpcFault(code.length ? fromNodes(code, { at: 0 }) : error.val.code, error.val.message);
      }
      case 'transport':
        throw new Error(`XML-RPC ${method}: ${describeError(error.val)}`);
      case 'status':
        throw new Error(`XML-RPC ${method}: HTTP ${error.val}`);
      default:
        throw new Error(`XML-RPC ${method}: ${error?.tag ?? 'error'}: ${error?.val ?? thrown}`);
    }
  }
  return fromNodes(reply, { at: 0 });
}

/** A client bound to one endpoint: `new Client('/RPC2').call('add', 2, 3)`. */
export class Client {
  constructor(endpoint = '/') {
    this.endpoint = endpoint;
  }

  call(method, ...params) {
    return call(this.endpoint, method, ...params);
  }
}

export default { call, Client, XmlRpcFault };
