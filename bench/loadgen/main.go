// Command loadgen is one load-generator process for bench/rooms.py: many speaking callers, one
// room each, on pion (server-sdk-go) with pre-encoded Opus, so a caller costs a fraction of an
// rtc-SDK caller (no encoder, no 10 ms audio device tick) and the load generator is not the
// bottleneck on the machine it shares with the agent.
//
// Each caller joins its room, publishes a microphone and, once the agent subscribes to it, speaks
// a tone burst every -period (the first after a random fraction of it). Between bursts it sends
// what a browser with DTX sends: a silence packet every 400 ms. It subscribes to the agent's
// audio (reading and dropping it) and times each turn from the end of its burst to the first
// chunk of the agent's reply caption on lk.transcription. It prints the same JSON lines as
// bench/_load_proc.py:
//
//	{"ready": N}  {"burst": R}  {"room": R, "turn_ms": T}  {"stats": {"bursts": B, "answers": A}}
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

const (
	frame      = 20 * time.Millisecond
	dtxEvery   = 20 // silence frames per DTX packet (400 ms), as libwebrtc sends
	readyAfter = 60 * time.Second
)

// packets is the pre-encoded audio written by bench/_opus.py.
type packets struct {
	Silence string   `json:"silence"`
	Tone    []string `json:"tone"`
}

type output struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *output) emit(v map[string]any) {
	line, _ := json.Marshal(v)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.Write(line)
	o.w.WriteByte('\n')
	o.w.Flush()
}

type caller struct {
	name    string
	room    *lksdk.Room
	track   *webrtc.TrackLocalStaticSample
	heard   chan struct{}
	heardMu sync.Once
	micSid  string

	mu       sync.Mutex
	waiting  bool
	burstEnd time.Time

	bursts  atomic.Int64
	answers atomic.Int64
}

func (c *caller) join(url, key, secret string, out *output) error {
	cb := lksdk.NewRoomCallback()
	cb.OnLocalTrackSubscribed = func(*lksdk.LocalTrackPublication, *lksdk.LocalParticipant) {
		c.heardMu.Do(func() { close(c.heard) })
	}
	cb.ParticipantCallback.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := track.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	room, err := lksdk.ConnectToRoom(url, lksdk.ConnectInfo{
		APIKey:              key,
		APISecret:           secret,
		RoomName:            c.name,
		ParticipantIdentity: "caller-" + c.name,
	}, cb, lksdk.WithAutoSubscribe(true))
	if err != nil {
		return fmt.Errorf("room %s: %w", c.name, err)
	}
	c.room = room
	err = room.RegisterTextStreamHandler("lk.transcription", func(r *lksdk.TextStreamReader, _ string) {
		if r.Info.Attributes["lk.transcribed_track_id"] == c.micSid {
			return // a transcript of our own speech, not the agent's reply
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.waiting {
			c.waiting = false
			c.answers.Add(1)
			ms := float64(time.Since(c.burstEnd).Microseconds()) / 1000
			out.emit(map[string]any{"room": c.name, "turn_ms": ms})
		}
	})
	if err != nil {
		return err
	}
	track, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"mic", "caller-"+c.name)
	if err != nil {
		return err
	}
	pub, err := room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
		Name: "mic", Source: livekit.TrackSource_MICROPHONE,
	})
	if err != nil {
		return fmt.Errorf("publish in %s: %w", c.name, err)
	}
	c.micSid = pub.SID()
	c.track = track
	return nil
}

// speak sends the caller's audio in real time until stop closes.
func (c *caller) speak(period time.Duration, silence []byte, tone [][]byte, out *output, stop <-chan struct{}) {
	ticker := time.NewTicker(frame)
	defer ticker.Stop()
	var next time.Time // zero until the agent listens
	burst, quiet := -1, 0
	for {
		select {
		case <-stop:
			return
		case now := <-ticker.C:
			if next.IsZero() {
				select {
				case <-c.heard:
					next = now.Add(time.Duration(rand.Float64() * float64(period)))
				default:
				}
			}
			if burst < 0 && !next.IsZero() && !now.Before(next) {
				burst = 0
			}
			if burst >= 0 {
				c.track.WriteSample(media.Sample{Data: tone[burst], Duration: frame})
				burst++
				if burst == len(tone) {
					c.mu.Lock()
					c.burstEnd, c.waiting = time.Now(), true
					c.mu.Unlock()
					c.bursts.Add(1)
					out.emit(map[string]any{"burst": c.name})
					burst, quiet = -1, 0
					next = next.Add(period)
				}
				continue
			}
			// DTX: one silence packet stands for the next 400 ms.
			if quiet%dtxEvery == 0 {
				c.track.WriteSample(media.Sample{Data: silence, Duration: frame * dtxEvery})
			}
			quiet++
		}
	}
}

func main() {
	url := flag.String("url", "", "LiveKit server URL")
	key := flag.String("key", "", "API key")
	secret := flag.String("secret", "", "API secret")
	rooms := flag.String("rooms", "", "comma-separated room names")
	period := flag.Float64("period", 4.0, "seconds between bursts")
	packetFile := flag.String("packets", "", "JSON file of pre-encoded Opus packets (bench/_opus.py)")
	flag.Parse()

	raw, err := os.ReadFile(*packetFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: -packets:", err)
		os.Exit(2)
	}
	var pk packets
	if err := json.Unmarshal(raw, &pk); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: -packets is not packet JSON:", err)
		os.Exit(2)
	}
	silence, _ := hex.DecodeString(pk.Silence)
	tone := make([][]byte, len(pk.Tone))
	for i, p := range pk.Tone {
		tone[i], _ = hex.DecodeString(p)
	}

	out := &output{w: bufio.NewWriter(os.Stdout)}
	stop := make(chan struct{})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	var callers []*caller
	var wg sync.WaitGroup
	for _, name := range strings.Split(*rooms, ",") {
		c := &caller{name: name, heard: make(chan struct{})}
		if err := c.join(*url, *key, *secret, out); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			continue
		}
		callers = append(callers, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.speak(time.Duration(*period*float64(time.Second)), silence, tone, out, stop)
		}()
	}

	deadline := time.After(readyAfter)
	heard := 0
wait:
	for _, c := range callers {
		select {
		case <-c.heard:
			heard++
		case <-deadline:
			break wait
		}
	}
	if heard == len(callers) {
		out.emit(map[string]any{"ready": heard})
	} else {
		out.emit(map[string]any{"ready": heard, "timeout": true})
	}

	<-signals
	close(stop)
	wg.Wait()
	var bursts, answers int64
	for _, c := range callers {
		bursts += c.bursts.Load()
		answers += c.answers.Load()
	}
	out.emit(map[string]any{"stats": map[string]int64{"bursts": bursts, "answers": answers}})
	for _, c := range callers {
		c.room.Disconnect()
	}
}
