// A js-libp2p peer that follows the DIDComm libp2p transport extension
// (shared/spec/didcomm-v2.1/ext-libp2p-transport.md) and nothing else:
// TCP + Noise + Yamux, protocol "didcomm/v2", the extension's own example
// code for sending and receiving.  didcommd's interop tests drive it.
//
//   node peer.mjs listen [--no-close]   print {"event":"ready",...}, then one
//                                      {"event":"received","message":...} line
//                                      per message; stop when stdin closes
//   node peer.mjs send MULTIADDR TEXT  send TEXT once, print {"event":"sent"};
//                                      stop when stdin closes
//   node peer.mjs mdns                 listen on 0.0.0.0 with @libp2p/mdns on
//                                      (run it inside a network namespace):
//                                      as listen, plus one {"event":"discovered",
//                                      "peerId","addrs"} line per peer found
//
// --no-close makes the receiver do exactly what the extension's example does
// (it never closes the stream); by default it closes its side once it has
// the whole message, which is how didcommd learns a message was taken.
//
// The sender keeps its node up until told to stop: stopping it right after
// stream.close() can cut the connection before the receiver has read the
// last bytes (py-libp2p drops unread bytes of a closed connection).

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import map from 'it-map'
import { pipe } from 'it-pipe'
import { createLibp2p } from 'libp2p'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'

const PROTOCOL = 'didcomm/v2'

// Node 20 lacks Promise.withResolvers (Node 22 has it), which some libp2p
// dependencies call at run time (never at import time, so this is early enough).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

function emit (event) {
  process.stdout.write(JSON.stringify(event) + '\n')
}

function untilStdinEnds () {
  process.stdin.resume()
  return new Promise((resolve) => process.stdin.on('end', resolve))
}

async function startNode (listen, withMdns = false) {
  return createLibp2p({
    addresses: { listen: withMdns ? ['/ip4/0.0.0.0/tcp/0'] : listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    // mDNS queries every second here (default 10 s) so that tests are quick.
    peerDiscovery: withMdns ? [mdns({ interval: 1000 })] : [],
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

async function listen (closeAfter, withMdns = false) {
  const node = await startNode(true, withMdns)
  if (withMdns) {
    node.addEventListener('peer:discovery', (evt) => {
      emit({
        event: 'discovered',
        peerId: evt.detail.id.toString(),
        addrs: evt.detail.multiaddrs.map((ma) => ma.toString())
      })
    })
  }
  await node.handle(PROTOCOL, async ({ stream }) => {
    // The extension's receiving example, verbatim but for where the message goes.
    await pipe(
      stream.source,
      lp.decode,
      (source) => map(source, (buf) => uint8ArrayToString(buf.subarray())),
      async function (source) {
        let message = ''
        for await (const msg of source) {
          message = message + (msg.toString().replace('\n', ''))
        }
        emit({ event: 'received', message })
      }
    )
    if (closeAfter) {
      await stream.close()
    }
  })
  emit({
    event: 'ready',
    peerId: node.peerId.toString(),
    addrs: node.getMultiaddrs().map((ma) => ma.toString())
  })
  await untilStdinEnds()
  await node.stop()
}

async function send (address, message) {
  const node = await startNode(false)
  // The extension's sending example: a string piped through it-length-prefixed
  // (one frame per character: the receiver joins them).
  const stream = await node.dialProtocol(multiaddr(address), PROTOCOL)
  await pipe(
    message,
    (source) => map(source, (string) => uint8ArrayFromString(string)),
    lp.encode,
    stream.sink
  )
  await stream.close()
  emit({ event: 'sent', peerId: node.peerId.toString() })
  await untilStdinEnds()
  await node.stop()
}

const [mode, ...args] = process.argv.slice(2)
if (mode === 'listen') {
  await listen(!args.includes('--no-close'))
} else if (mode === 'mdns') {
  await listen(true, true)
} else if (mode === 'send' && args.length === 2) {
  await send(args[0], args[1])
} else {
  process.stderr.write('usage: node peer.mjs listen [--no-close] | mdns | send MULTIADDR TEXT\n')
  process.exit(2)
}
